package qemu

import "syscall"

// sysProcAttr makes the kernel kill QEMU when the program that started it
// dies, so that a crashed test or tool leaves no VM behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
