package tftpsrv

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenErrors(t *testing.T) {
	held, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	heldAddr := held.LocalAddr().String()
	_, heldPort, _ := net.SplitHostPort(heldAddr)

	for _, tc := range []struct {
		name  string
		err   func() error
		cause error
		want  []string
	}{
		{
			name:  "port held by another socket",
			err:   func() error { _, err := Listen(heldAddr); return err },
			cause: syscall.EADDRINUSE,
			want: []string{"tftpsrv: listen udp " + heldAddr, "address already in use",
				"another program holds UDP port " + heldPort, "tftpd-hpa", "dnsmasq", "pxekit"},
		},
		{
			name: "ListenAndServe says the same",
			err: func() error {
				return (&Server{Handler: HandlerFunc(func(ResponseWriter, *Request) {})}).ListenAndServe(heldAddr)
			},
			cause: syscall.EADDRINUSE,
			want:  []string{"another program holds UDP port " + heldPort},
		},
		{
			// Tests run as root here, so the refusal an unprivileged
			// user meets on port 69 is built as net returns it.
			name: "privileged port",
			err: func() error {
				return listenError(":69", &net.OpError{Op: "listen", Net: "udp",
					Addr: &net.UDPAddr{Port: 69}, Err: os.NewSyscallError("bind", syscall.EACCES)})
			},
			cause: syscall.EACCES,
			want:  []string{"tftpsrv: listen udp :69: bind: permission denied", "port 69 needs root or the CAP_NET_BIND_SERVICE capability", ":6969"},
		},
		{
			name: "other errors keep their text",
			err: func() error {
				return listenError("[::1]:69", &net.OpError{Op: "listen", Net: "udp",
					Err: os.NewSyscallError("socket", syscall.EAFNOSUPPORT)})
			},
			cause: syscall.EAFNOSUPPORT,
			want:  []string{"tftpsrv: listen udp: socket: address family not supported by protocol"},
		},
		{
			name:  "bad address",
			err:   func() error { _, err := Listen("127.0.0.1:notaport"); return err },
			cause: nil,
			want:  []string{"tftpsrv: listen udp", "notaport"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			require.Error(t, err)
			if tc.cause != nil {
				assert.ErrorIs(t, err, tc.cause)
			}
			var oe *net.OpError
			assert.True(t, errors.As(err, &oe), "the *net.OpError stays reachable: %v", err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			if tc.cause != syscall.EACCES {
				assert.NotContains(t, err.Error(), "CAP_NET_BIND_SERVICE")
			}
			if tc.cause != syscall.EADDRINUSE {
				assert.NotContains(t, err.Error(), "tftpd-hpa")
			}
		})
	}
}

// A socket from Listen, served, fills in Request.LocalAddr: Serve turns on
// the destination-address control messages on it.
func TestListenFillsLocalAddr(t *testing.T) {
	conn, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	_, ok := conn.(*net.UDPConn)
	require.True(t, ok, "%T", conn)
	got := make(chan netip.Addr, 1)
	srv := &Server{Handler: HandlerFunc(func(w ResponseWriter, r *Request) {
		got <- r.LocalAddr
		w.Error(&Error{Code: ErrCodeFileNotFound, Message: "none"})
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(conn) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.ErrorIs(t, <-done, ErrServerClosed)
	}()
	c := newRawClient(t, conn.LocalAddr().String())
	c.request(opRRQ, "x")
	assert.Equal(t, opERROR, c.recvOp(opERROR, 5*time.Second))
	select {
	case a := <-got:
		assert.Equal(t, netip.MustParseAddr("127.0.0.1"), a)
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was not called")
	}
}
