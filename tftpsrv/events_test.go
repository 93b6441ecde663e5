package tftpsrv

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEventServed(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   Event
		want bool
	}{
		{"end", Event{Kind: TransferEnd, Bytes: 10}, true},
		{"empty file", Event{Kind: TransferEnd}, true},
		{"start", Event{Kind: TransferStart}, false},
		{"size probe", Event{Kind: TransferEnd, Probe: true}, false},
		{"failed", Event{Kind: TransferEnd, Err: ErrTimeout}, false},
		{"refused", Event{Kind: TransferEnd, Err: errors.New("no")}, false},
		{"zero", Event{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, tc.ev.Served()) })
	}
}
