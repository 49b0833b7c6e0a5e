-- Shared by every bench script: one machine-readable line at the end.
-- RESULT <requests/s> <p50 us> <p99 us> <failed requests (non-2xx/3xx, socket errors)>
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("RESULT %.1f %.1f %.1f %d\n",
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99),
      e.status + e.connect + e.read + e.write + e.timeout))
end
