package reliability

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// parentHelperEnv, set to a courier binary, makes the test binary a parent
// that starts `courier serve` with a death signal, prints its pid and waits
// to be killed.
const parentHelperEnv = "COURIER_TEST_PARENT_OF"

// TestServerDiesWithItsParent: a server started with a parent death signal
// (as the tests here start theirs, and as a supervisor may) dies with its
// parent, even though it starts itself again for huge pages on the way
// (an exec from another thread than the first would drop the signal).
func TestServerDiesWithItsParent(t *testing.T) {
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), parentHelperEnv+"="+courierBin, "COURIER_DATA="+t.TempDir())
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the helper's pid line: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("the helper's pid line %q: %v", line, err)
	}
	// Whether the server started itself again for huge pages (not on every
	// machine): without the restart this checks the death signal alone.
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	t.Logf("courier restarted itself for huge pages: %v", strings.Contains(string(env), "COURIER_HUGEPAGES_STARTED=1"))
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("courier (pid %d) still runs 10s after its parent was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive tells whether pid runs and is not a zombie waiting to be reaped.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(rest, "Z")
}

// parentHelper starts a server of bin as startProcess does, prints its pid
// once it listens, and waits to be killed; it returns only on an error.
func parentHelper(bin string) int {
	courierBin = bin
	cmd := serveCommand("--data", os.Getenv("COURIER_DATA"))
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "parent helper:", err)
		return 1
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "courier listening on ") {
		fmt.Fprintf(os.Stderr, "parent helper: courier's first line %q (%v)\n", line, err)
		return 1
	}
	fmt.Println(cmd.Process.Pid)
	select {}
}
