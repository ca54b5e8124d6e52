// The in-memory Responses store: entries by id for previous_response_id, items by id for
// item_reference inputs, and the LRU bound, which takes an entry's items with it unless a newer
// entry holds them. (redis-store.test.ts runs the interface against both stores.)
import { describe, expect, it } from 'vitest';
import { MemoryResponseStore } from '../../src/server/store/index.js';

const response = (id: string, input: unknown[], output: unknown[]) => ({ id, input, output, response: { id } });

describe('MemoryResponseStore', () => {
  it('finds stored input and output items by id; eviction drops an item only when no stored response holds it', async () => {
    const store = new MemoryResponseStore({ maxEntries: 2 });
    const question = { type: 'message', id: 'msg_in', role: 'user', content: 'Hi' };
    const call = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'f', arguments: '{}' };
    await store.put('k', response('resp_1', [question], [call]));
    expect(await store.item('k', 'msg_in')).toBe(question);
    expect(await store.item('k', 'fc_1')).toBe(call);
    expect(await store.item('k', 'fc_2')).toBeUndefined();
    // A follow-up replays the first response's items (previous_response_id).
    const answer = { type: 'message', id: 'msg_2', role: 'assistant', content: [] };
    await store.put('k', response('resp_2', [question, call, { type: 'function_call_output', call_id: 'call_1', output: 'ok' }], [answer]));
    await store.put('k', response('resp_3', [{ role: 'user', content: 'unrelated' }], []));
    // resp_1 is evicted (two entries at most), but resp_2 still holds its items.
    expect(await store.get('k', 'resp_1')).toBeUndefined();
    expect(await store.item('k', 'fc_1')).toBe(call);
    await store.put('k', response('resp_4', [], []));
    expect(await store.get('k', 'resp_2')).toBeUndefined();
    expect(await store.item('k', 'fc_1')).toBeUndefined();
    expect(await store.item('k', 'msg_2')).toBeUndefined();
    expect(store.size).toBe(2);
  });

  it('the count and byte bounds cover every owner together; an owner sees only its own entries', async () => {
    const store = new MemoryResponseStore({ maxEntries: 3, maxBytes: 10_000 });
    await store.put('a', response('resp_1', [{ id: 'm1', content: 'x'.repeat(4000) }], []));
    await store.put('b', response('resp_1', [{ id: 'm1', content: 'y'.repeat(4000) }], []));
    expect(((await store.item('a', 'm1')) as { content: string }).content[0]).toBe('x');
    expect(((await store.item('b', 'm1')) as { content: string }).content[0]).toBe('y');
    // A third of 4000 bytes passes 10 000: the least recently used (a's) goes.
    await store.put('c', response('resp_1', [{ id: 'm1', content: 'z'.repeat(4000) }], []));
    expect(await store.get('a', 'resp_1')).toBeUndefined();
    expect(await store.item('a', 'm1')).toBeUndefined();
    expect(await store.get('b', 'resp_1')).toBeDefined();
    expect(await store.get('c', 'resp_1')).toBeDefined();
  });
});
