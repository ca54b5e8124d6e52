// The `stop` parameter: generation ends as soon as the text contains one of the strings, and the
// text is cut before it. While streaming, text that could be the start of a stop string is held
// back until the next delta settles it, so a stop string never reaches the client.

export class StopStringMatcher {
  private held = '';
  private done = false;

  constructor(private readonly stops: readonly string[]) {}

  get stopped(): boolean {
    return this.done;
  }

  /** Text safe to emit now; after a match, the text before it and nothing more. */
  push(delta: string): string {
    if (this.done) return '';
    if (this.stops.length === 0) return delta;
    const text = this.held + delta;
    let cut = -1;
    for (const s of this.stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.done = true;
      this.held = '';
      return text.slice(0, cut);
    }
    // Hold back the longest tail that is a prefix of some stop string.
    let keep = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, text.length); n > keep; n--) {
        if (text.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
      }
    }
    this.held = text.slice(text.length - keep);
    return text.slice(0, text.length - keep);
  }

  /** End of the text: what was held back is not a stop string after all. */
  flush(): string {
    const out = this.done ? '' : this.held;
    this.held = '';
    return out;
  }
}
