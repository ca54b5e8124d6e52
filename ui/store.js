// What the page keeps in localStorage: conversations, settings, the API key. A full or disabled
// storage only loses the saving, never the chat.
const PREFIX = 'gpt-oss-webgpu.';

export function load(name, fallback) {
  try {
    const v = localStorage.getItem(PREFIX + name);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

export function save(name, value) {
  try {
    localStorage.setItem(PREFIX + name, JSON.stringify(value));
  } catch (e) {
    console.warn(`could not save ${name}:`, e);
  }
}

export const DEFAULT_SETTINGS = { system: '', temperature: 1, top_p: 1, max_tokens: null, effort: 'medium', model: null };

export function loadSettings() {
  return { ...DEFAULT_SETTINGS, ...load('settings', {}) };
}

/** Conversations, newest first: { id, title, updated, messages: [{ role, content, reasoning?, meta? }] }. */
export function loadConversations() {
  const list = load('conversations', []);
  return Array.isArray(list) ? list.filter((c) => c && typeof c.id === 'string' && Array.isArray(c.messages)) : [];
}

export function saveConversations(list) {
  save('conversations', list);
}

export function newConversation() {
  return { id: `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`, title: '', updated: Date.now(), messages: [] };
}
