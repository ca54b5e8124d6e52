// The Responses store: entries by id for previous_response_id, items by id for item_reference
// inputs, and the LRU bound, which takes an entry's items with it unless a newer entry holds them.
import { describe, expect, it } from 'vitest';
import { ResponseStore } from '../../src/server/response-store.js';

const response = (id: string, input: unknown[], output: unknown[]) => ({ id, input, output, response: { id } });

describe('ResponseStore', () => {
  it('finds stored input and output items by id; eviction drops an item only when no stored response holds it', () => {
    const store = new ResponseStore(2);
    const question = { type: 'message', id: 'msg_in', role: 'user', content: 'Hi' };
    const call = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'f', arguments: '{}' };
    store.put(response('resp_1', [question], [call]));
    expect(store.item('msg_in')).toBe(question);
    expect(store.item('fc_1')).toBe(call);
    expect(store.item('fc_2')).toBeUndefined();
    // A follow-up replays the first response's items (previous_response_id).
    const answer = { type: 'message', id: 'msg_2', role: 'assistant', content: [] };
    store.put(response('resp_2', [question, call, { type: 'function_call_output', call_id: 'call_1', output: 'ok' }], [answer]));
    store.put(response('resp_3', [{ role: 'user', content: 'unrelated' }], []));
    // resp_1 is evicted (two entries at most), but resp_2 still holds its items.
    expect(store.get('resp_1')).toBeUndefined();
    expect(store.item('fc_1')).toBe(call);
    store.put(response('resp_4', [], []));
    expect(store.get('resp_2')).toBeUndefined();
    expect(store.item('fc_1')).toBeUndefined();
    expect(store.item('msg_2')).toBeUndefined();
    expect(store.size).toBe(2);
  });
});
