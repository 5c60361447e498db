package pricing

import (
	"math/big"
	"testing"
)

// BenchmarkRoute prices a typical request against a small table: the cost the paywall adds to
// every request for reading the path (canonical form, two readings for letter case).
func BenchmarkRoute(b *testing.B) {
	table, err := New([]Rule{
		{Method: "GET", Path: "/v1/quote", Price: big.NewInt(1000)},
		{Method: "POST", Path: "/v1/echo", Price: big.NewInt(2000)},
		{Method: "GET", Path: "/v1/health", Price: big.NewInt(0)},
		{Method: "*", Path: "/v1/files/**", Price: big.NewInt(3000)},
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []string{"/v1/quote", "/v1/files/a/b%20c/d", "/V1/Unlisted/Path"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := table.Route("GET", p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
