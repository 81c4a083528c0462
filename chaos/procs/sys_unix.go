//go:build unix && !linux

package procs

import (
	"os"
	"syscall"
)

// sysProcAttr puts a child in its own process group, so a Ctrl-C at the terminal reaches
// only the supervisor. Outside Linux, a child outlives a supervisor that is killed.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func pauseProcess(p *os.Process) error  { return p.Signal(syscall.SIGSTOP) }
func resumeProcess(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
