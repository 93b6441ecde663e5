package vmtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmp runs one QMP command on a fresh connection and returns its "return"
// value. QEMU's QMP server takes one client at a time, so calls are
// serialised; a connection per call keeps asynchronous events from piling up
// between calls.
func (vm *VM) qmp(ctx context.Context, command string, args map[string]any) (json.RawMessage, error) {
	vm.qmpMu.Lock()
	defer vm.qmpMu.Unlock()
	if err := vm.gone(); err != nil {
		return nil, fmt.Errorf("vmtest: QMP %s: %w", command, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", vm.qmpPath())
	if err != nil {
		return nil, fmt.Errorf("vmtest: QMP %s: %w", command, err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(20 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		return nil, fmt.Errorf("vmtest: QMP greeting: %w", err)
	}
	if _, err := qmpCall(conn, r, "qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return qmpCall(conn, r, command, args)
}

// qmpCall sends one command and reads until its reply, skipping events.
func qmpCall(conn net.Conn, r *bufio.Reader, command string, args map[string]any) (json.RawMessage, error) {
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	msg, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(append(msg, '\n')); err != nil {
		return nil, fmt.Errorf("vmtest: QMP %s: %w", command, err)
	}
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("vmtest: QMP %s: %w", command, err)
		}
		var reply struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &reply); err != nil {
			return nil, fmt.Errorf("vmtest: QMP %s: bad reply %q: %w", command, line, err)
		}
		if reply.Error != nil {
			return nil, fmt.Errorf("vmtest: QMP %s: %s: %s", command, reply.Error.Class, reply.Error.Desc)
		}
		if reply.Return != nil {
			return reply.Return, nil
		}
		// An asynchronous event; keep reading.
	}
}
