package tftpsrv

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRTOEstimator(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name    string
		ceil    time.Duration
		samples []time.Duration
		backoff int
		want    time.Duration
	}{
		{"before any sample, the ceiling", time.Second, nil, 0, time.Second},
		{"fast LAN, the floor", time.Second, []time.Duration{ms / 10, ms / 5, ms / 10}, 0, minRTO},
		{"slow client, four deviations above", 6 * time.Second, []time.Duration{200 * ms}, 0, 600 * ms},
		{"never above the ceiling", time.Second, []time.Duration{900 * ms}, 0, time.Second},
		{"ceiling below the floor wins", 50 * ms, []time.Duration{ms}, 0, 50 * ms},
		{"doubles per timeout", 6 * time.Second, []time.Duration{ms}, 2, 4 * minRTO},
		{"backoff capped", time.Second, []time.Duration{ms}, 10, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRTOEstimator(tc.ceil)
			for _, s := range tc.samples {
				e.sample(s)
			}
			for range tc.backoff {
				e.backoff()
			}
			assert.Equal(t, tc.want, e.timeout())
		})
	}
}
