package rie

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// setProcessGroup starts cmd in a process group of its own, so that stopping
// it reaches the runtime it starts too, and has the kernel kill it should
// this process die first.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends SIGTERM (or SIGKILL when kill) to cmd's process group.
func signalGroup(cmd *exec.Cmd, kill bool) {
	if cmd.Process == nil {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

// listensOn reports whether process pid itself holds a listening TCP socket
// on each of addrs (127.0.0.1:port): the socket's inode, from the kernel's
// table of the process's network namespace (/proc/PID/net/tcp, tcp6), is
// one of the process's open files.
func listensOn(pid int, addrs ...string) (bool, error) {
	want := map[string]bool{} // the table's local_address, e.g. 0100007F:1F90
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || !ap.Addr().Is4() {
			return false, fmt.Errorf("rie: %q is not an IPv4 address and port", a)
		}
		ip := ap.Addr().As4()
		want[fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())] = true
		// The same address as an IPv4-mapped IPv6 one, in tcp6.
		want[fmt.Sprintf("0000000000000000FFFF0000%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())] = true
	}
	inodes := map[string]string{} // socket inode -> local address
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			if table == "tcp6" && errors.Is(err, fs.ErrNotExist) {
				continue // no IPv6 on this kernel
			}
			return false, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			const listen = "0A"
			if len(f) > 9 && f[3] == listen && want[f[1]] {
				inodes[f[9]] = f[1]
			}
		}
	}
	if len(inodes) < len(addrs) {
		return false, nil
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, err
	}
	held := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(l, "socket:["); ok {
			if local, ok := inodes[strings.TrimSuffix(inode, "]")]; ok {
				held[local[len(local)-4:]] = true // by port
			}
		}
	}
	return len(held) == len(addrs), nil
}
