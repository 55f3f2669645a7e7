package rie

// SetAddrs makes p take the invoke and Runtime API addresses of each new
// environment from pick.
func SetAddrs(p *Pool, pick func() (invoke, runtimeAPI string, err error)) { p.addrs = pick }

// FreeAddrs is the pool's own choice of addresses.
var FreeAddrs = freeAddrs
