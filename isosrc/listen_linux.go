package isosrc

import (
	"net"

	"golang.org/x/sys/unix"
)

// allAcknowledged reports whether the peer has acknowledged every byte
// written to c: the send queue (unsent plus unacknowledged, SIOCOUTQ) is
// empty.
func allAcknowledged(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	queued := -1
	if err := rc.Control(func(fd uintptr) {
		if n, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
			queued = n
		}
	}); err != nil {
		return false
	}
	return queued == 0
}
