package main

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// vaultLoad is what one daemon's counting proxy saw in a window of whole
// seconds.
type vaultLoad struct {
	window   time.Duration
	requests int // all requests in the window
	kvReads  int
	// cycles are the secrets' refreshes in the window, summed over
	// secrets: a secret's KV reads less than half an interval apart are
	// one refresh. readsPerCycle is KV reads per refresh (exactly 1 when
	// no secret is read twice), perInterval KV reads per secret per
	// refresh interval of wall time (1 minus the jitter and run time).
	cycles        int
	readsPerCycle float64
	perInterval   float64
	period        time.Duration // mean time between a secret's refreshes
	// conns is the number of client connections the proxy accepted over
	// the daemon's whole life, connsWindow those accepted in the window.
	conns, connsWindow int
	buckets            []int   // requests per 1 s of the window
	worst              int     // the most requests in one of those seconds
	uniform            float64 // the same for as many requests spread uniformly at random (median of the draws)
	draws              int
}

func (l vaultLoad) mean() float64 {
	if l.window <= 0 {
		return 0
	}
	return float64(l.requests) / l.window.Seconds()
}

// ratio is the worst second over the uniform random expectation.
func (l vaultLoad) ratio() float64 {
	if l.uniform == 0 {
		return 0
	}
	return float64(l.worst) / l.uniform
}

func (l vaultLoad) String() string {
	return fmt.Sprintf("%d requests in %s (%.1f/s), %.3f KV reads per refresh, %.3f per secret per interval, period %.2fs, %d connections (%d in the window), worst second %d vs %.1f uniform (%.2fx)",
		l.requests, l.window, l.mean(), l.readsPerCycle, l.perInterval, l.period.Seconds(), l.conns, l.connsWindow, l.worst, l.uniform, l.ratio())
}

// measureLoad computes the load of n secrets at refresh on Vault from the
// requests and connection accept times of one daemon's proxy, over the
// window of whole seconds from from.
func measureLoad(reqs []request, conns []time.Time, n int, refresh time.Duration, from time.Time, window time.Duration, draws int) vaultLoad {
	to := from.Add(window)
	in := between(reqs, from, to)
	l := vaultLoad{window: window, requests: len(in), conns: len(conns), draws: draws}
	for _, c := range conns {
		if !c.Before(from) && c.Before(to) {
			l.connsWindow++
		}
	}
	l.kvReads = countClasses(in)[classKVRead]
	l.cycles, l.period = cycles(in, refresh)
	if l.cycles > 0 {
		l.readsPerCycle = float64(l.kvReads) / float64(l.cycles)
	}
	l.perInterval = float64(l.kvReads) / float64(n) / (window.Seconds() / refresh.Seconds())
	secs := int(window / time.Second)
	l.buckets = make([]int, secs)
	for _, r := range in {
		if i := int(r.At.Sub(from) / time.Second); i >= 0 && i < secs {
			l.buckets[i]++
		}
	}
	for _, b := range l.buckets {
		l.worst = max(l.worst, b)
	}
	l.uniform = uniformWorst(l.requests, secs, draws)
	return l
}

// uniformWorst is the median, over draws Monte-Carlo draws, of the most
// requests in one of secs 1 s buckets when count requests fall uniformly
// at random over them: the worst second a perfectly random spread of the
// same load gives. The seed is fixed, so a run is reproducible.
func uniformWorst(count, secs, draws int) float64 {
	if count == 0 || secs == 0 || draws == 0 {
		return 0
	}
	rng := rand.New(rand.NewPCG(20261201, uint64(count)<<20|uint64(secs)))
	buckets := make([]int, secs)
	worst := make([]float64, draws)
	for d := range worst {
		clear(buckets)
		hi := 0
		for range count {
			i := rng.IntN(secs)
			buckets[i]++
			hi = max(hi, buckets[i])
		}
		worst[d] = float64(hi)
	}
	sort.Float64s(worst)
	return median(worst)
}
