// The chat page: a conversation with one of the server's models through its own streaming
// /v1/chat/completions. Answers render as sanitized Markdown as they stream; reasoning streams
// into a collapsed section; each answer shows its model, tokens, time to first token, tokens per
// second and cached prompt tokens. Conversations, settings and the API key stay in localStorage.
import { ApiError, listModels, streamChat } from './api.js';
import { renderMarkdown } from './markdown.js';
import * as store from './store.js';

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

let settings = store.loadSettings();
let apiKey = store.load('apiKey', '');
let conversations = store.loadConversations();
let current = conversations.find((c) => c.id === store.load('current', null)) ?? store.newConversation();
/** The answer being streamed: { controller }. */
let running = null;
/** Ids of routing models (`auto`): the model that answered is shown beside them. */
const routingIds = new Set();

// --- conversations ---------------------------------------------------------------------------

function persist() {
  current.updated = Date.now();
  const first = current.messages.find((m) => m.role === 'user');
  current.title = first ? first.content.replace(/\s+/g, ' ').trim().slice(0, 60) : '';
  conversations = conversations.filter((c) => c.id !== current.id);
  if (current.messages.length > 0) conversations.unshift(current);
  store.saveConversations(conversations);
  store.save('current', current.id);
  renderConversationList();
}

function renderConversationList() {
  const list = $('conversations');
  list.replaceChildren();
  for (const c of conversations) {
    const li = el('li', c.id === current.id ? 'current' : '');
    const open = el('button', 'open', c.title || 'Untitled');
    open.type = 'button';
    open.title = c.title;
    if (c.id === current.id) open.setAttribute('aria-current', 'true');
    open.addEventListener('click', () => switchTo(c));
    const del = el('button', 'delete', '×');
    del.type = 'button';
    del.setAttribute('aria-label', `Delete "${c.title || 'Untitled'}"`);
    del.addEventListener('click', () => {
      conversations = conversations.filter((x) => x.id !== c.id);
      store.saveConversations(conversations);
      if (c.id === current.id) switchTo(store.newConversation());
      else renderConversationList();
    });
    li.append(open, del);
    list.append(li);
  }
}

function switchTo(c) {
  running?.controller.abort();
  current = c;
  store.save('current', current.id);
  renderMessages();
  renderConversationList();
  closeSidebar();
  $('input').focus();
}

// --- messages --------------------------------------------------------------------------------

function describe(meta) {
  if (!meta) return '';
  const parts = [];
  if (meta.model) parts.push(meta.auto ? `${meta.auto} → ${meta.model}` : meta.model);
  if (meta.tokens != null) parts.push(`${meta.tokens} tokens`);
  if (meta.ttft != null) parts.push(`TTFT ${meta.ttft.toFixed(2)} s`);
  if (meta.tps != null) parts.push(`${meta.tps.toFixed(1)} tokens/s`);
  if (meta.cached != null) parts.push(`${meta.cached} cached prompt tokens`);
  if (meta.finish === 'length') parts.push('cut at max tokens');
  return parts.join(' · ');
}

function fillMeta(node, meta) {
  node.textContent = describe(meta);
  if (meta?.stopped) node.append(el('span', 'stopped', `${node.textContent ? ' · ' : ''}stopped`));
  if (meta?.error) node.append(el('span', 'stopped', `${node.textContent ? ' · ' : ''}${meta.error}`));
}

function messageView(m) {
  const art = el('article', `msg ${m.role}`);
  if (m.role === 'user') {
    art.append(el('div', 'body', m.content));
    return { art };
  }
  const details = el('details', 'reasoning');
  const summary = el('summary', '', 'Reasoning');
  const text = el('div', 'text', m.reasoning ?? '');
  details.append(summary, text);
  details.hidden = !m.reasoning;
  const body = el('div', 'body');
  body.innerHTML = renderMarkdown(m.content ?? '');
  const meta = el('div', 'meta');
  fillMeta(meta, m.meta);
  art.append(details, body, meta);
  return { art, details, summary, text, body, meta };
}

function renderMessages() {
  const box = $('messages');
  box.replaceChildren();
  if (current.messages.length === 0) box.append(emptyHint);
  for (const m of current.messages) box.append(messageView(m).art);
  updateButtons();
  scrollToEnd();
}

function scrollToEnd() {
  const box = $('messages');
  box.scrollTop = box.scrollHeight;
}

function updateButtons() {
  const last = current.messages.at(-1);
  $('send').hidden = running !== null;
  $('stop').hidden = running === null;
  $('regenerate').disabled = running !== null || !last;
  $('edit').disabled = running !== null || !current.messages.some((m) => m.role === 'user');
}

// --- errors ----------------------------------------------------------------------------------

function showError(e) {
  const box = $('error');
  let text = e instanceof ApiError && e.status ? `Error ${e.status}: ${e.message}` : `Error: ${e.message}`;
  if (e instanceof ApiError && e.retryAfter) text += ` (retry after ${e.retryAfter} s)`;
  if (e instanceof ApiError && e.status === 401) text += ' Set the API key in Settings.';
  box.textContent = text;
  box.hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

// --- asking ----------------------------------------------------------------------------------

function requestBody() {
  const model = $('model').value;
  const messages = [
    ...(settings.system.trim() ? [{ role: 'system', content: settings.system }] : []),
    ...current.messages.map((m) => ({ role: m.role, content: m.content })),
  ];
  return {
    ...(model ? { model } : {}),
    messages,
    reasoning_effort: settings.effort,
    temperature: settings.temperature,
    top_p: settings.top_p,
    ...(settings.max_tokens ? { max_tokens: settings.max_tokens } : {}),
  };
}

async function ask() {
  clearError();
  // The conversation asked: it may be switched away from while the answer streams.
  const conv = current;
  const body = requestBody();
  const answer = { role: 'assistant', content: '', reasoning: '', meta: { auto: routingIds.has(body.model) ? body.model : undefined } };
  conv.messages.push(answer);
  const view = messageView(answer);
  $('empty')?.remove();
  view.art.classList.add('streaming');
  $('messages').append(view.art);
  const controller = new AbortController();
  running = { controller };
  updateButtons();
  const t0 = performance.now();
  let first = null;
  let scheduled = false;
  const paint = () => {
    scheduled = false;
    view.body.innerHTML = renderMarkdown(answer.content);
    view.text.textContent = answer.reasoning;
    view.details.hidden = answer.reasoning === '';
    view.summary.textContent = running && answer.content === '' ? 'Reasoning…' : 'Reasoning';
    scrollToEnd();
  };
  try {
    const r = await streamChat(body, {
      key: apiKey,
      signal: controller.signal,
      onModel: (m) => {
        answer.meta.model = m;
        fillMeta(view.meta, answer.meta);
      },
      onDelta: ({ content, reasoning }) => {
        first ??= performance.now();
        answer.content += content;
        answer.reasoning += reasoning;
        if (!scheduled) {
          scheduled = true;
          requestAnimationFrame(paint);
        }
      },
    });
    const end = performance.now();
    const tokens = r.usage?.completion_tokens ?? null;
    Object.assign(answer.meta, {
      model: r.model ?? answer.meta.model,
      tokens,
      cached: r.usage?.prompt_tokens_details?.cached_tokens ?? (r.usage ? 0 : null),
      ttft: first === null ? null : (first - t0) / 1000,
      // decode speed: the tokens after the first, over the time after it
      tps: tokens > 1 && first !== null && end > first ? (tokens - 1) / ((end - first) / 1000) : null,
      finish: r.finish,
    });
  } catch (e) {
    if (e?.name === 'AbortError') {
      answer.meta.stopped = true;
    } else {
      showError(e);
      if (answer.content === '' && answer.reasoning === '') {
        conv.messages.pop();
        view.art.remove();
      } else answer.meta.error = 'failed';
    }
  } finally {
    running = null;
    paint();
    view.art.classList.remove('streaming');
    fillMeta(view.meta, answer.meta);
    persist();
    updateButtons();
  }
}

function send() {
  const input = $('input');
  const text = input.value;
  if (running || text.trim() === '') return;
  const m = { role: 'user', content: text };
  current.messages.push(m);
  input.value = '';
  $('empty')?.remove();
  $('messages').append(messageView(m).art);
  persist();
  void ask();
}

function regenerate() {
  if (running) return;
  if (current.messages.at(-1)?.role === 'assistant') current.messages.pop();
  if (current.messages.at(-1)?.role !== 'user') return;
  renderMessages();
  void ask();
}

function editLast() {
  if (running) return;
  const i = current.messages.findLastIndex((m) => m.role === 'user');
  if (i < 0) return;
  $('input').value = current.messages[i].content;
  current.messages.splice(i);
  renderMessages();
  persist();
  $('input').focus();
}

function newChat() {
  running?.controller.abort();
  switchTo(store.newConversation());
  clearError();
}

// --- models and settings ---------------------------------------------------------------------

async function refreshModels() {
  const select = $('model');
  try {
    const data = await listModels(apiKey);
    routingIds.clear();
    select.replaceChildren();
    for (const m of data) {
      const routes = Array.isArray(m.routes_to) ? m.routes_to : null;
      if (routes) routingIds.add(m.id);
      const option = el('option', '', routes ? `${m.id} (${routes.join(' or ')})` : m.id);
      option.value = m.id;
      select.append(option);
    }
    const wanted = [settings.model, ...routingIds, data[0]?.id].find((id) => id && data.some((m) => m.id === id));
    if (wanted) select.value = wanted;
    clearError();
  } catch (e) {
    select.replaceChildren(el('option', '', e instanceof ApiError && e.status === 401 ? 'API key needed' : 'unavailable'));
    select.firstChild.value = '';
    showError(e);
  }
}

function openSettings() {
  $('system').value = settings.system;
  $('temperature').value = String(settings.temperature);
  $('top_p').value = String(settings.top_p);
  $('max_tokens').value = settings.max_tokens ? String(settings.max_tokens) : '';
  $('api_key').value = apiKey;
  $('settings').showModal();
}

function saveSettings() {
  const num = (id, fallback) => {
    const v = Number($(id).value);
    return $(id).value.trim() === '' || !Number.isFinite(v) ? fallback : v;
  };
  settings = {
    ...settings,
    system: $('system').value,
    temperature: num('temperature', 1),
    top_p: num('top_p', 1),
    max_tokens: $('max_tokens').value.trim() === '' ? null : Math.max(1, Math.round(num('max_tokens', 1))),
  };
  store.save('settings', settings);
  const key = $('api_key').value.trim();
  if (key !== apiKey) {
    apiKey = key;
    store.save('apiKey', apiKey);
    void refreshModels();
  }
}

function closeSidebar() {
  $('sidebar').classList.remove('open');
  $('toggle-sidebar').setAttribute('aria-expanded', 'false');
}

// --- wiring ----------------------------------------------------------------------------------

const emptyHint = $('empty');

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  send();
});
$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || $('settings').open) return;
  if (running) running.controller.abort();
  else closeSidebar();
});
$('stop').addEventListener('click', () => running?.controller.abort());
$('regenerate').addEventListener('click', regenerate);
$('edit').addEventListener('click', editLast);
$('new-chat').addEventListener('click', newChat);
$('open-settings').addEventListener('click', openSettings);
$('settings').addEventListener('close', () => {
  if ($('settings').returnValue === 'save') saveSettings();
  $('open-settings').focus();
});
$('effort').value = settings.effort;
$('effort').addEventListener('change', () => {
  settings.effort = $('effort').value;
  store.save('settings', settings);
});
$('model').addEventListener('change', () => {
  settings.model = $('model').value;
  store.save('settings', settings);
});
$('toggle-sidebar').addEventListener('click', () => {
  const open = $('sidebar').classList.toggle('open');
  $('toggle-sidebar').setAttribute('aria-expanded', String(open));
  if (open) $('new-chat').focus();
});

renderMessages();
renderConversationList();
void refreshModels();
$('input').focus();
