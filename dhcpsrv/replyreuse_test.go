package dhcpsrv

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestReusedReplyCarriesNothingOver checks the recycling of reply messages
// (newReply, finish): the OFFER to a plain client after a network-boot
// client's carries exactly the options a fresh server's OFFER carries, no
// boot option, GUID or file name left from the one before.
func TestReusedReplyCarriesNothingOver(t *testing.T) {
	used := newTestServer(t, Config{Mode: ModeFull})
	for _, rc := range recordedClients {
		exchange(t, used, buildDiscover(t, rc), 67, zeroSrc)
	}
	plain := plainDiscover(mustMAC("02:00:00:00:aa:01"))
	got, _ := exchange(t, used, plain, 67, zeroSrc)
	want, _ := exchange(t, newTestServer(t, Config{Mode: ModeFull}), plain, 67, zeroSrc)
	if assert.NotNil(t, got) && assert.NotNil(t, want) {
		assert.Equal(t, want.Options, got.Options)
		assert.Equal(t, want.BootFileName, got.BootFileName)
		assert.Equal(t, want.ServerIPAddr, got.ServerIPAddr)
		assert.Equal(t, plain.ClientHWAddr, got.ClientHWAddr)
	}
}
