package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPackRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short", []byte("d-i debian-installer/locale string en_US.UTF-8\n")},
		{"preseed-like", bytes.Repeat([]byte("#| for d in \"$root\"/sys/block/*; do\n"), 600)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pk packer
			p, err := pk.pack(tc.data)
			require.NoError(t, err)
			for range 3 { // pooled decompressors must not carry state over
				got, err := pk.unpack(p)
				require.NoError(t, err)
				assert.Equal(t, len(tc.data), len(got))
				assert.True(t, bytes.Equal(tc.data, got))
			}
			if len(tc.data) > 1000 {
				assert.Less(t, len(p.data), len(tc.data)/4, "packed size")
			}
		})
	}
}

func TestUnpackCorrupt(t *testing.T) {
	var pk packer
	p, err := pk.pack(bytes.Repeat([]byte("x"), 5000))
	require.NoError(t, err)
	p.data = p.data[:len(p.data)/2] // a cut stream
	_, err = pk.unpack(p)
	require.Error(t, err)
	p2, err := pk.pack([]byte("abc"))
	require.NoError(t, err)
	p2.size = 10 // more than the stream holds
	_, err = pk.unpack(p2)
	require.ErrorContains(t, err, "packed answer file")
	p2.size = 3
	got, err := pk.unpack(p2) // the pooled state is good after errors
	require.NoError(t, err)
	assert.Equal(t, "abc", string(got))
}

// TestBufferedResponseReadFrom checks that a body copied by
// http.ServeContent arrives whole, read into one buffer of about its size
// without io.Copy's buffer on the way.
func TestBufferedResponseReadFrom(t *testing.T) {
	body := strings.Repeat("d-i partman/choose_partition select finish\n", 500)
	r := httptest.NewRequest(http.MethodGet, "/hosts/x/preseed.cfg", nil)
	serve := func(w http.ResponseWriter) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		http.ServeContent(w, r, "preseed.cfg", time.Time{}, strings.NewReader(body))
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	serve(&bufferedResponse{header: http.Header{}}) // loads the MIME tables
	// writeOnly hides ReadFrom: the path before it existed.
	type writeOnly struct{ http.ResponseWriter }
	viaWrite := serve(writeOnly{&bufferedResponse{header: http.Header{}}})
	bw := &bufferedResponse{header: http.Header{}}
	viaReadFrom := serve(bw)
	assert.Equal(t, http.StatusOK, bw.code)
	assert.Equal(t, body, bw.body.String())
	t.Logf("%d-byte body: %d bytes allocated through Write, %d through ReadFrom", len(body), viaWrite, viaReadFrom)
	assert.Less(t, viaReadFrom+uint64(len(body))/2, viaWrite, "ReadFrom saves the copy buffer")

	// Without a length, it still reads everything.
	bw = &bufferedResponse{header: http.Header{}}
	n, err := io.Copy(bw, strings.NewReader(body))
	require.NoError(t, err)
	assert.EqualValues(t, len(body), n)
	assert.Equal(t, body, bw.body.String())
}
