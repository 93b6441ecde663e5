package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		assert.Equal(t, tc.want, median(tc.in), "%v", tc.in)
	}
}

func TestTableRatiosFavourPxekitAboveOne(t *testing.T) {
	var buf bytes.Buffer
	e := &env{out: &buf}
	e.table("throughput", "pxekit", true, []row{
		{subject: "pxekit", value: 200, unit: "MB/s"},
		{subject: "tftpd-hpa", value: 100, unit: "MB/s"},
	})
	e.table("latency", "pxekit", false, []row{
		{subject: "pxekit", value: 2, unit: "ms"},
		{subject: "kea", value: 5, unit: "ms"},
	})
	out := buf.String()
	assert.Contains(t, out, "2.00x")
	assert.Contains(t, out, "2.50x")
}
