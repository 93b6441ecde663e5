package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pxekit/pxekit/answerfile"
	"github.com/pxekit/pxekit/dhcpsrv"
)

func TestBuildFleetListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	fakeNetboot(t, filepath.Join(dir, "nb"))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "empty-nb"), 0o755))
	inv := fmt.Sprintf(`defaults:
  disk: {wipe: true}
  root: {password: {hash: %q}}
profiles:
  good: {os: debian-12, netboot: nb}
  noiso: {os: rocky-9.0, iso: missing.iso}
  nokernel: {os: debian-12, netboot: empty-nb}
hosts:
  - {mac: "52:54:00:00:00:01", hostname: h1, profile: good, overrides: {disk: {wipe: false}}}
  - {mac: "52:54:00:00:00:02", hostname: h2, profile: noiso}
  - {mac: "52:54:00:00:00:03", hostname: h3, profile: nokernel}
  - {mac: "52:54:00:00:00:04", hostname: h4, profile: good}
`, testHash)
	parsed, err := ParseInventory([]byte(inv), dir)
	require.NoError(t, err, "every problem here needs the media or a renderer")
	store, err := OpenStore("")
	require.NoError(t, err)

	// An empty host root: no loaders either.
	_, err = buildFleet(parsed, buildOptions{HTTPBase: "http://10.0.0.1:8080/", ServerIP: netip.MustParseAddr("10.0.0.1"), Store: store, HostRoot: t.TempDir()})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrInventory))
	var ie *InventoryError
	require.True(t, errors.As(err, &ie))
	want := []string{
		"boot loaders: ",
		"profile noiso: stat ", // isosrc.OpenMedia names the file
		"profile nokernel: netboot ",
		"hosts[0] (h1): spec: disk.wipe",
	}
	assertOneProblemEach(t, ie.Problems, want, err)
	// Hosts of a broken profile are not blamed again; h4 is fine.
	assert.Len(t, ie.Problems, len(want), "%s", err)
	assert.Contains(t, err.Error(), "missing.iso")
	assert.Contains(t, err.Error(), "grub-efi-amd64-signed", "names the packages to install")
}

func TestBootDecision(t *testing.T) {
	uefiPXE := func(mac string) dhcpsrv.Client {
		return dhcpsrv.Client{MAC: mustMAC(t, mac), Arch: dhcpsrv.ArchEFIX64, ArchSent: true, PXE: true}
	}
	bios := func(mac string) dhcpsrv.Client {
		return dhcpsrv.Client{MAC: mustMAC(t, mac), Arch: dhcpsrv.ArchBIOS, PXE: true}
	}
	ipxe := func(mac string) dhcpsrv.Client {
		return dhcpsrv.Client{MAC: mustMAC(t, mac), Arch: dhcpsrv.ArchBIOS, PXE: true, IPXE: true}
	}
	for _, tc := range []struct {
		name    string
		unknown string
		snponly bool
		full    bool // full DHCP instead of proxy
		done    bool // the host has reported
		client  dhcpsrv.Client
		want    string // "" with wantErr
		wantErr error
	}{
		{name: "ignored MAC gets no boot answer", unknown: UnknownIgnore, client: bios(macNew), wantErr: dhcpsrv.ErrNoBootFile},
		{name: "ignored MAC with iPXE neither", unknown: UnknownIgnore, client: ipxe(macNew), wantErr: dhcpsrv.ErrNoBootFile},
		{name: "iPXE gets its host's script", unknown: UnknownLocal, client: ipxe(macDB), want: "http://10.0.0.1:8080/hosts/52-54-00-f1-00-02/boot.ipxe"},
		{name: "iPXE of an unknown MAC gets its own script too", unknown: UnknownMenu, client: ipxe(macNew), want: "http://10.0.0.1:8080/hosts/52-54-00-99-00-09/boot.ipxe"},
		{name: "proxy UEFI PXE chainloads iPXE when served", unknown: UnknownLocal, snponly: true, client: uefiPXE(macWeb), want: "ipxe/snponly.efi"},
		{name: "proxy UEFI PXE keeps shim without snponly.efi", unknown: UnknownLocal, client: uefiPXE(macWeb), want: "shimx64.efi"},
		{name: "full DHCP UEFI keeps shim", unknown: UnknownLocal, snponly: true, full: true, client: uefiPXE(macWeb), want: "shimx64.efi"},
		{name: "BIOS gets pxelinux", unknown: UnknownLocal, snponly: true, client: bios(macApp), want: "pxelinux.0"},
		{name: "installed host still gets a loader (its menu boots the disk)", unknown: UnknownLocal, done: true, client: bios(macWeb), want: "pxelinux.0"},
		{name: "unknown MAC under local gets a loader", unknown: UnknownLocal, client: bios(macNew), want: "pxelinux.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newTestFleet(t, tc.unknown, tc.snponly, func(o *buildOptions) { o.Proxy = !tc.full })
			if tc.done {
				_, err := f.gate.Reported(tc.client.MAC, Report{Report: answerfile.Report{Status: "ok"}})
				require.NoError(t, err)
			}
			// The DHCP server says so in proxy mode only: in full mode
			// OVMF's second request, to port 4011, follows our own ACK.
			tc.client.Proxy = !tc.full
			ans, err := f.boot(tc.client)
			if tc.wantErr != nil {
				require.Error(t, err)
				assert.True(t, errors.Is(err, tc.wantErr), "%v", err)
				assert.Contains(t, err.Error(), "ignored", "the reason reaches the DHCP log")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, ans.File)
			assert.Equal(t, netip.MustParseAddr("10.0.0.1"), ans.ServerIP)
		})
	}
}
