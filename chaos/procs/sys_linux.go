package procs

import (
	"os"
	"syscall"
)

// sysProcAttr puts a child in its own process group, so a Ctrl-C at the terminal reaches
// only the supervisor, and has the kernel kill it when the supervisor dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func pauseProcess(p *os.Process) error  { return p.Signal(syscall.SIGSTOP) }
func resumeProcess(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
