package qcow2

import (
	"os"
	"syscall"
)

// QEMU locks an open image with open file description (OFD) locks on bytes
// 100 + permission bit (what it uses) and 200 + permission bit (what it
// does not let others use); see raw_apply_lock_bytes in block/file-posix.c.
const (
	fOFDGetlk      = 36 // F_OFD_GETLK
	fOFDSetlk      = 37 // F_OFD_SETLK
	qemuLockStart  = 100
	qemuLockLength = 200
)

// lockedByQEMU reports whether another process holds QEMU's image locks on
// the file f.
func lockedByQEMU(f *os.File) (bool, error) {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: qemuLockStart, Len: qemuLockLength}
	if err := syscall.FcntlFlock(f.Fd(), fOFDGetlk, &lk); err != nil {
		return false, err
	}
	return lk.Type != syscall.F_UNLCK, nil
}

// lockLikeQEMU takes QEMU's lock bytes on f for as long as f stays open, so
// a QEMU that starts meanwhile finds the image in use, as with qemu-img.
// It fails if another process holds them.
func lockLikeQEMU(f *os.File) error {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: qemuLockStart, Len: qemuLockLength}
	return syscall.FcntlFlock(f.Fd(), fOFDSetlk, &lk)
}
