import { ManualClock } from '../src/index.js';
import { FailureRateLimiter } from '../src/rate-limiter.js';

describe('FailureRateLimiter', () => {
  it('allows a burst of bad requests per caller, then refuses until the budget refills', () => {
    const clock = new ManualClock(0);
    const limiter = new FailureRateLimiter(clock, { burst: 3, perSecond: 1 });
    for (let i = 0; i < 3; i++) {
      expect(limiter.limited('bad')).toBe(false);
      limiter.penalize('bad');
    }
    expect(limiter.limited('bad')).toBe(true);
    expect(limiter.limited('good')).toBe(false);
    clock.advance(999);
    expect(limiter.limited('bad')).toBe(true);
    clock.advance(1);
    expect(limiter.limited('bad')).toBe(false);
  });

  it('tracks a bounded number of callers, forgetting the oldest', () => {
    const limiter = new FailureRateLimiter(new ManualClock(0), { burst: 1, maxCallers: 2 });
    limiter.penalize('a');
    limiter.penalize('b');
    limiter.penalize('c');
    expect(limiter.trackedCallers).toBe(2);
    expect(limiter.limited('a')).toBe(false);
    expect(limiter.limited('c')).toBe(true);
  });
});
