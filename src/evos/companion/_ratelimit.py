"""Per-token rate limiting: a token bucket per key (pure; time is an argument)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_KEYS = 10_000  # buckets kept; full (idle) ones are dropped first when there are more


@dataclass
class _Bucket:
    tokens: float
    at_s: float


class RateLimiter:
    """``rate_per_s`` requests per second on average per key, in bursts of at most ``burst``."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"rate_per_s must be > 0 and burst >= 1, got {rate_per_s} and {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now_s: float) -> float:
        """Spend one request of ``key``: 0.0 if allowed, else the seconds until one is available."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                self._prune(now_s)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now_s)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now_s - bucket.at_s) * self.rate_per_s)
        bucket.at_s = now_s
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_s

    def _prune(self, now_s: float) -> None:
        full_after_s = self.burst / self.rate_per_s
        idle = [k for k, b in self._buckets.items() if now_s - b.at_s >= full_after_s]
        for key in idle or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]
