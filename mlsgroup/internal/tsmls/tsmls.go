// Package tsmls drives ts-mls, the TypeScript MLS library, from Go tests.
//
// Each [Client] is one ts-mls group member running in its own `node driver.mjs` process
// (interop/tsmls at the repository root). Requests and responses are JSON lines; binary
// values travel as hex and surface here as []byte. The package exists so interop tests
// can have ts-mls create, join and process groups next to tchat's own implementation:
//
//	alice := tsmls.Start(t)
//	if _, err := alice.Init(1, []byte("alice")); err != nil { t.Fatal(err) }
//
// ts-mls must be installed with `npm ci --prefix interop/tsmls --no-audit --no-fund`.
// [Start] fails the test when it is not, unless TCHAT_SKIP_TSMLS=1 is set, in which case it
// skips.
package tsmls

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InstallCommand installs the driver's pinned dependencies; run it at the repository root.
const InstallCommand = "npm ci --prefix interop/tsmls --no-audit --no-fund"

// SkipEnv, set to 1, makes [Start] skip the test instead of failing when ts-mls is missing.
const SkipEnv = "TCHAT_SKIP_TSMLS"

// MinNodeMajor is the oldest Node.js major version the driver supports.
const MinNodeMajor = 20

// Cipher suites as ts-mls numbers them.
const (
	SuiteX25519AES128 uint16 = 1    // MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	SuiteXWing        uint16 = 0x53 // ts-mls's MLS_256_XWING_AES256GCM_SHA512_Ed25519 (HPKE KEM 0x647a)
)

// DefaultTimeout bounds each request to the driver.
var DefaultTimeout = 2 * time.Minute

const modulePath = "github.com/tchat-p2p/tchat"

// RepoRoot returns the root of the tchat module: the first directory, walking up from the
// working directory, whose go.mod declares the module; failing that, `go env GOMOD`.
func RepoRoot() (string, error) {
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; {
			if isRepoRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		gomod := strings.TrimSpace(string(out))
		if gomod != "" && gomod != os.DevNull {
			if dir := filepath.Dir(gomod); isRepoRoot(dir) {
				return dir, nil
			}
		}
	}
	return "", fmt.Errorf("tsmls: cannot find the root of module %s from the working directory", modulePath)
}

func isRepoRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" && f[1] == modulePath {
			return true
		}
	}
	return false
}

// Dir returns the directory of the Node project, interop/tsmls.
func Dir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "interop", "tsmls"), nil
}

var nodeVersionRE = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)`)

// Available reports why ts-mls cannot be driven here, or nil: node must be on PATH with a
// major version of at least [MinNodeMajor], and interop/tsmls/node_modules must hold ts-mls.
func Available() error {
	dir, err := Dir()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "driver.mjs")); err != nil {
		return fmt.Errorf("tsmls: driver missing: %w", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("tsmls: node (Node.js >= %d) is not on PATH", MinNodeMajor)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return fmt.Errorf("tsmls: %s --version: %w", node, err)
	}
	m := nodeVersionRE.FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		return fmt.Errorf("tsmls: cannot parse node version %q", strings.TrimSpace(string(out)))
	}
	if major, _ := strconv.Atoi(m[1]); major < MinNodeMajor {
		return fmt.Errorf("tsmls: node %s is too old, need >= %d", strings.TrimSpace(string(out)), MinNodeMajor)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ts-mls", "package.json")); err != nil {
		return fmt.Errorf("tsmls: ts-mls is not installed in %s/node_modules: run `%s` at the repository root",
			dir, InstallCommand)
	}
	return nil
}

// RequireEnv, set to 1, makes missing ts-mls prerequisites a test failure instead of a
// skip. CI sets it, so that a broken install cannot pass silently.
const RequireEnv = "TCHAT_REQUIRE_TSMLS"

// Require makes sure ts-mls can be driven, or stops t:
//   - with TCHAT_SKIP_TSMLS=1, the test is skipped;
//   - if Node.js is there but the driver's dependencies are not, they are installed once
//     (npm ci, under a lock, so parallel test processes do not race);
//   - if that is impossible (no Node.js, no npm registry), the test is skipped with the
//     reason, or fails when TCHAT_REQUIRE_TSMLS=1 (as in CI).
//
// So `go test ./...` works on a fresh machine, and CI still proves the interop.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("ts-mls interop tests skipped: %s=1", SkipEnv)
	}
	err := Available()
	if err != nil && nodeUsable() == nil {
		if ierr := install(); ierr != nil {
			err = fmt.Errorf("%v; installing it failed: %v", err, ierr)
		} else {
			err = Available()
		}
	}
	if err == nil {
		return
	}
	msg := err.Error()
	if !strings.Contains(msg, InstallCommand) {
		msg += fmt.Sprintf("\nts-mls interop tests need Node.js >= %d and the driver's dependencies: "+
			"run `%s` at the repository root", MinNodeMajor, InstallCommand)
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1)", msg, RequireEnv)
	}
	t.Skipf("%s (set %s=1 to make this a failure)", msg, RequireEnv)
}

// nodeUsable reports whether a recent enough node and npm are on PATH.
func nodeUsable() error {
	node, err := exec.LookPath("node")
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return err
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return err
	}
	m := nodeVersionRE.FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		return fmt.Errorf("cannot parse node version %q", out)
	}
	if major, _ := strconv.Atoi(m[1]); major < MinNodeMajor {
		return fmt.Errorf("node %s is too old", strings.TrimSpace(string(out)))
	}
	return nil
}

// install runs the pinned install (npm ci) in interop/tsmls, holding a lock file so that
// test processes running in parallel install once.
func install() error {
	dir, err := Dir()
	if err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if Available() == nil { // another process installed it while we waited
		return nil
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// Client is one ts-mls member in its own node process. Its methods are safe for
// concurrent use but run one at a time.
type Client struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	resp    chan []byte
	stderr  *tailBuffer
	nextID  int64
	dead    error
	timeout time.Duration
}

// Start runs a new driver process for the test and stops it when the test ends. It calls
// [Require] first.
func Start(t testing.TB) *Client {
	t.Helper()
	Require(t)
	c, err := Spawn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			if s := c.Stderr(); s != "" {
				t.Logf("ts-mls driver stderr:\n%s", s)
			}
		}
	})
	return c
}

// Spawn runs a new driver process; the caller must Close it. Most callers want [Start].
func Spawn() (*Client, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	dir, _ := Dir()
	cmd := exec.Command("node", "driver.mjs")
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cmd:     cmd,
		stdin:   stdin,
		resp:    make(chan []byte, 1),
		stderr:  &tailBuffer{max: 64 << 10},
		timeout: DefaultTimeout,
	}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("tsmls: starting node driver.mjs: %w", err)
	}
	go func() {
		defer close(c.resp)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
		for sc.Scan() {
			c.resp <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	return c, nil
}

// Close stops the driver process. It is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead == nil {
		c.dead = errors.New("tsmls: client closed")
	}
	if c.cmd.Process == nil || c.cmd.ProcessState != nil {
		return nil
	}
	c.stdin.Close()
	done := make(chan struct{})
	go func() {
		c.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
	return nil
}

// Stderr returns the last part of the driver's log.
func (c *Client) Stderr() string { return c.stderr.String() }

// SetTimeout changes how long one request may take (default [DefaultTimeout]).
func (c *Client) SetTimeout(d time.Duration) {
	c.mu.Lock()
	c.timeout = d
	c.mu.Unlock()
}

// Error is a request that the driver answered with ok=false.
type Error struct {
	Op  string
	Msg string
}

func (e *Error) Error() string { return "ts-mls " + e.Op + ": " + e.Msg }

// call sends {"id","op",req...} and decodes the response into out.
func (c *Client) call(op string, req map[string]any, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return c.dead
	}
	c.nextID++
	id := c.nextID
	msg := map[string]any{"id": id, "op": op}
	for k, v := range req {
		msg[k] = v
	}
	line, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("tsmls %s: encoding request: %w", op, err)
	}
	if _, err := c.stdin.Write(append(line, '\n')); err != nil {
		c.dead = fmt.Errorf("tsmls: driver gone (%v); stderr:\n%s", err, c.stderr.String())
		return c.dead
	}
	var raw []byte
	select {
	case r, ok := <-c.resp:
		if !ok {
			c.dead = fmt.Errorf("tsmls %s: driver exited; stderr:\n%s", op, c.stderr.String())
			return c.dead
		}
		raw = r
	case <-time.After(c.timeout):
		c.dead = fmt.Errorf("tsmls %s: no answer in %v; stderr:\n%s", op, c.timeout, c.stderr.String())
		c.cmd.Process.Kill()
		return c.dead
	}
	var head struct {
		ID    *int64 `json:"id"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		c.dead = fmt.Errorf("tsmls %s: bad response %q: %v", op, raw, err)
		return c.dead
	}
	if head.ID == nil || *head.ID != id {
		c.dead = fmt.Errorf("tsmls %s: response %q does not answer request %d", op, raw, id)
		return c.dead
	}
	if !head.OK {
		return &Error{Op: op, Msg: head.Error}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("tsmls %s: decoding response: %w", op, err)
		}
	}
	return nil
}

// hexBytes is []byte carried as a hex string (null or absent: nil).
type hexBytes []byte

func (h hexBytes) MarshalJSON() ([]byte, error) {
	if h == nil {
		return []byte("null"), nil
	}
	return json.Marshal(hex.EncodeToString(h))
}

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

func hexList(bs [][]byte) []hexBytes {
	out := make([]hexBytes, len(bs))
	for i, b := range bs {
		out[i] = hexBytes(b)
		if out[i] == nil {
			out[i] = hexBytes{}
		}
	}
	return out
}

// nonNil keeps empty inputs as "" rather than null on the wire.
func nonNil(b []byte) hexBytes {
	if b == nil {
		return hexBytes{}
	}
	return hexBytes(b)
}

// WireFormat selects how a handshake message is framed.
type WireFormat string

const (
	Private WireFormat = "private" // PrivateMessage (ts-mls's default)
	Public  WireFormat = "public"  // PublicMessage
)

// InitResult describes the member's signature key.
type InitResult struct {
	SuiteName          string
	SignaturePublicKey []byte
	// SignaturePrivateKey is as ts-mls keeps it: PKCS#8 for Ed25519
	// (302e020100300506032b657004220420 || 32-byte seed).
	SignaturePrivateKey []byte
}

// Init picks the cipher suite (ts-mls's number, e.g. [SuiteX25519AES128] or [SuiteXWing]),
// makes a signature key pair and a basic credential for identity. Capabilities are
// ts-mls's defaults, GREASE values included; see [Client.InitNoGrease].
func (c *Client) Init(suite uint16, identity []byte) (*InitResult, error) {
	return c.init(suite, identity, true)
}

// InitNoGrease is [Client.Init] with the GREASE values removed from the capabilities.
func (c *Client) InitNoGrease(suite uint16, identity []byte) (*InitResult, error) {
	return c.init(suite, identity, false)
}

func (c *Client) init(suite uint16, identity []byte, grease bool) (*InitResult, error) {
	var r struct {
		SuiteName           string   `json:"suiteName"`
		SignaturePublicKey  hexBytes `json:"signaturePublicKey"`
		SignaturePrivateKey hexBytes `json:"signaturePrivateKey"`
	}
	err := c.call("init", map[string]any{"suite": suite, "identity": nonNil(identity), "grease": grease}, &r)
	if err != nil {
		return nil, err
	}
	return &InitResult{r.SuiteName, r.SignaturePublicKey, r.SignaturePrivateKey}, nil
}

// KeyPackageResult is a fresh KeyPackage and its private keys.
type KeyPackageResult struct {
	KeyPackage           []byte // MLSMessage (mls_key_package)
	InitPrivateKey       []byte
	EncryptionPrivateKey []byte
}

// KeyPackage makes a KeyPackage (an MLSMessage); the client keeps its private part for
// [Client.JoinFromWelcome]. A newer KeyPackage replaces the pending one.
func (c *Client) KeyPackage() ([]byte, error) {
	r, err := c.KeyPackageWithKeys()
	if err != nil {
		return nil, err
	}
	return r.KeyPackage, nil
}

// KeyPackageWithKeys is [Client.KeyPackage] that also returns the private keys.
func (c *Client) KeyPackageWithKeys() (*KeyPackageResult, error) {
	var r struct {
		KeyPackage           hexBytes `json:"keyPackage"`
		InitPrivateKey       hexBytes `json:"initPrivateKey"`
		EncryptionPrivateKey hexBytes `json:"encryptionPrivateKey"`
	}
	if err := c.call("keyPackage", nil, &r); err != nil {
		return nil, err
	}
	return &KeyPackageResult{r.KeyPackage, r.InitPrivateKey, r.EncryptionPrivateKey}, nil
}

// Epoch is the member's epoch after an operation.
type Epoch struct {
	Epoch              uint64
	EpochAuthenticator []byte
	OwnLeaf            uint32
}

type epochWire struct {
	Epoch              uint64   `json:"epoch"`
	EpochAuthenticator hexBytes `json:"epochAuthenticator"`
	OwnLeaf            uint32   `json:"ownLeaf"`
}

func (e epochWire) epoch() *Epoch { return &Epoch{e.Epoch, e.EpochAuthenticator, e.OwnLeaf} }

// CreateGroup creates a one-member group (epoch 0) with the given group ID.
func (c *Client) CreateGroup(groupID []byte) (*Epoch, error) {
	var r epochWire
	if err := c.call("createGroup", map[string]any{"groupId": nonNil(groupID)}, &r); err != nil {
		return nil, err
	}
	return r.epoch(), nil
}

// CommitResult is a commit ts-mls made and already applied to its own state.
type CommitResult struct {
	Commit             []byte // MLSMessage (PublicMessage or PrivateMessage)
	Welcome            []byte // MLSMessage (mls_welcome); nil when nobody was added
	RatchetTree        []byte // the new tree: optional<Node> ratchet_tree<V>
	Epoch              uint64
	EpochAuthenticator []byte
	State              string // "active", "removedFromGroup", "suspendedPendingReinit"
}

type commitWire struct {
	Commit             hexBytes `json:"commit"`
	Welcome            hexBytes `json:"welcome"`
	RatchetTree        hexBytes `json:"ratchetTree"`
	Epoch              uint64   `json:"epoch"`
	EpochAuthenticator hexBytes `json:"epochAuthenticator"`
	State              string   `json:"state"`
}

func (w commitWire) result() *CommitResult {
	return &CommitResult{w.Commit, w.Welcome, w.RatchetTree, w.Epoch, w.EpochAuthenticator, w.State}
}

// AddOptions shape an Add commit.
type AddOptions struct {
	// RatchetTreeExtension puts the ratchet tree into the Welcome's GroupInfo.
	RatchetTreeExtension bool
	// WireFormat of the commit; "" is [Private].
	WireFormat WireFormat
	// WithPath asks for an UpdatePath. ts-mls 1.6.4 cannot do it (it never puts a path in
	// an Add-only commit); the driver answers with an error.
	WithPath bool
}

// AddMembers commits Add proposals for the KeyPackages (MLSMessages) as a PrivateMessage.
// ts-mls puts no UpdatePath in an Add-only commit.
func (c *Client) AddMembers(kps [][]byte, ratchetTreeExt bool) (*CommitResult, error) {
	return c.AddMembersWith(kps, AddOptions{RatchetTreeExtension: ratchetTreeExt})
}

// AddMembersWith is [Client.AddMembers] with all options.
func (c *Client) AddMembersWith(kps [][]byte, o AddOptions) (*CommitResult, error) {
	req := map[string]any{
		"keyPackages":          hexList(kps),
		"ratchetTreeExtension": o.RatchetTreeExtension,
		"withPath":             o.WithPath,
	}
	if o.WireFormat != "" {
		req["wireFormat"] = o.WireFormat
	}
	var r commitWire
	if err := c.call("addMembers", req, &r); err != nil {
		return nil, err
	}
	return r.result(), nil
}

// JoinFromWelcome joins with the pending KeyPackage. ratchetTree (optional<Node>
// ratchet_tree<V>) may be nil when the Welcome carries the ratchet_tree extension.
func (c *Client) JoinFromWelcome(welcome, ratchetTree []byte) (*Epoch, error) {
	req := map[string]any{"welcome": nonNil(welcome), "ratchetTree": nil}
	if ratchetTree != nil {
		req["ratchetTree"] = hexBytes(ratchetTree)
	}
	var r epochWire
	if err := c.call("joinFromWelcome", req, &r); err != nil {
		return nil, err
	}
	return r.epoch(), nil
}

// CommitOptions shape a commit without Adds.
type CommitOptions struct {
	// Update asks for a path commit. ts-mls always puts an UpdatePath in an empty commit
	// and in one that removes members, so this is documentation only.
	Update bool
	// RemoveLeaves are the leaf indices to remove (none: an empty commit).
	RemoveLeaves []uint32
	// WireFormat of the commit; "" is [Private].
	WireFormat WireFormat
	// RatchetTreeExtension applies to a Welcome, made only when pending Add proposals
	// (received through [Client.Process]) are committed.
	RatchetTreeExtension bool
}

// Commit commits any pending proposals plus Removes for o.RemoveLeaves. With neither it is
// an empty commit, which carries an UpdatePath.
func (c *Client) Commit(o CommitOptions) (*CommitResult, error) {
	leaves := o.RemoveLeaves
	if leaves == nil {
		leaves = []uint32{}
	}
	req := map[string]any{
		"update":               o.Update,
		"removeLeaves":         leaves,
		"ratchetTreeExtension": o.RatchetTreeExtension,
	}
	if o.WireFormat != "" {
		req["wireFormat"] = o.WireFormat
	}
	var r commitWire
	if err := c.call("commit", req, &r); err != nil {
		return nil, err
	}
	return r.result(), nil
}

// ProposeAdd sends an Add proposal for a KeyPackage (MLSMessage); it returns the message.
func (c *Client) ProposeAdd(keyPackage []byte, wf WireFormat) ([]byte, error) {
	return c.propose(map[string]any{"type": "add", "keyPackage": nonNil(keyPackage)}, wf)
}

// ProposeRemove sends a Remove proposal for a leaf; it returns the message.
func (c *Client) ProposeRemove(leaf uint32, wf WireFormat) ([]byte, error) {
	return c.propose(map[string]any{"type": "remove", "leaf": leaf}, wf)
}

func (c *Client) propose(req map[string]any, wf WireFormat) ([]byte, error) {
	if wf != "" {
		req["wireFormat"] = wf
	}
	var r struct {
		Message hexBytes `json:"message"`
	}
	if err := c.call("propose", req, &r); err != nil {
		return nil, err
	}
	return r.Message, nil
}

// Message kinds reported by [Client.Process].
const (
	KindCommit      = "commit"
	KindProposal    = "proposal"
	KindApplication = "application"
)

// ProcessResult is what processing one message did.
type ProcessResult struct {
	Kind               string // KindCommit, KindProposal or KindApplication
	Plaintext          []byte // for KindApplication
	Epoch              uint64 // after the message
	EpochAuthenticator []byte
	State              string // for handshake messages: "active", "removedFromGroup", ...
}

// Process handles a PublicMessage or PrivateMessage (MLSMessage): a commit, a proposal or
// application data.
func (c *Client) Process(message []byte) (*ProcessResult, error) {
	var r struct {
		Kind               string   `json:"kind"`
		Plaintext          hexBytes `json:"plaintext"`
		Epoch              uint64   `json:"epoch"`
		EpochAuthenticator hexBytes `json:"epochAuthenticator"`
		State              string   `json:"state"`
	}
	if err := c.call("process", map[string]any{"message": nonNil(message)}, &r); err != nil {
		return nil, err
	}
	return &ProcessResult{r.Kind, r.Plaintext, r.Epoch, r.EpochAuthenticator, r.State}, nil
}

// Encrypt makes an application PrivateMessage (MLSMessage).
func (c *Client) Encrypt(plaintext []byte) ([]byte, error) {
	var r struct {
		Message hexBytes `json:"message"`
	}
	if err := c.call("encrypt", map[string]any{"plaintext": nonNil(plaintext)}, &r); err != nil {
		return nil, err
	}
	return r.Message, nil
}

// Export returns MLS-Exporter(label, context, length) for the current epoch.
func (c *Client) Export(label string, context []byte, length int) ([]byte, error) {
	var r struct {
		Secret hexBytes `json:"secret"`
	}
	req := map[string]any{"label": label, "context": nonNil(context), "length": length}
	if err := c.call("export", req, &r); err != nil {
		return nil, err
	}
	return r.Secret, nil
}

// Member is one occupied leaf.
type Member struct {
	Leaf               uint32
	Identity           []byte // basic credential identity
	SignaturePublicKey []byte
}

// State is the member's view of the group.
type State struct {
	Epoch              uint64
	EpochAuthenticator []byte
	GroupID            []byte
	Suite              uint16
	OwnLeaf            uint32
	Members            []Member
	RatchetTree        []byte // optional<Node> ratchet_tree<V>
	TreeHash           []byte
	State              string
}

// State reports the member's group state.
func (c *Client) State() (*State, error) {
	var r struct {
		Epoch              uint64   `json:"epoch"`
		EpochAuthenticator hexBytes `json:"epochAuthenticator"`
		GroupID            hexBytes `json:"groupId"`
		Suite              uint16   `json:"suite"`
		OwnLeaf            uint32   `json:"ownLeaf"`
		Members            []struct {
			Leaf               uint32   `json:"leaf"`
			Identity           hexBytes `json:"identity"`
			SignaturePublicKey hexBytes `json:"signaturePublicKey"`
		} `json:"members"`
		RatchetTree hexBytes `json:"ratchetTree"`
		TreeHash    hexBytes `json:"treeHash"`
		State       string   `json:"state"`
	}
	if err := c.call("state", nil, &r); err != nil {
		return nil, err
	}
	s := &State{
		Epoch: r.Epoch, EpochAuthenticator: r.EpochAuthenticator, GroupID: r.GroupID, Suite: r.Suite,
		OwnLeaf: r.OwnLeaf, RatchetTree: r.RatchetTree, TreeHash: r.TreeHash, State: r.State,
	}
	for _, m := range r.Members {
		s.Members = append(s.Members, Member{m.Leaf, m.Identity, m.SignaturePublicKey})
	}
	return s, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
