package main

import (
	"math"
	"slices"
	"time"
)

// latencyStats summarise one phase's latencies, in microseconds. They come from the full
// sorted sample, not from buckets.
type latencyStats struct {
	Mean float64 `json:"meanMicros"`
	P50  float64 `json:"p50Micros"`
	P90  float64 `json:"p90Micros"`
	P99  float64 `json:"p99Micros"`
	P999 float64 `json:"p999Micros"`
	Max  float64 `json:"maxMicros"`
}

func summarize(d []time.Duration) latencyStats {
	if len(d) == 0 {
		return latencyStats{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return latencyStats{
		Mean: micros(sum / time.Duration(len(d))),
		P50:  micros(quantile(d, 0.50)),
		P90:  micros(quantile(d, 0.90)),
		P99:  micros(quantile(d, 0.99)),
		P999: micros(quantile(d, 0.999)),
		Max:  micros(d[len(d)-1]),
	}
}

// quantile is the nearest-rank quantile q of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
