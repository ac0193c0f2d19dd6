//go:build !linux

package faultserver

import (
	"net"
	"time"
)

// waitSent waits a moment for written data to leave before a reset; only
// Linux can tell when it has.
func waitSent(_ *net.TCPConn, limit time.Duration) {
	time.Sleep(min(limit, 50*time.Millisecond))
}
