package identity

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"
)

// The keystore format is described in the package documentation.
const (
	keystoreFormat  = "tchat-keystore"
	keystoreVersion = 1

	// maxKeystoreSize bounds the keystore file and plaintext we read.
	maxKeystoreSize = 64 << 10

	// DefaultScryptWorkFactor is the scrypt work factor (log2 N) used for new
	// keystores and backups: age's own default, about a second on a current
	// machine, which makes each passphrase guess that expensive.
	DefaultScryptWorkFactor = 18
	// maxScryptWorkFactor is the highest work factor accepted when opening a file
	// (age's default limit), so a crafted file cannot make us compute for hours.
	maxScryptWorkFactor = 22
)

var (
	// ErrWrongPassphrase is returned when a passphrase does not open a keystore or
	// a backup.
	ErrWrongPassphrase = errors.New("identity: wrong passphrase")
	// ErrCorruptKeystore is returned for a keystore that cannot be read.
	ErrCorruptKeystore = errors.New("identity: keystore is corrupt or not a tchat keystore")
)

// keystore is the decoded keystore.
type keystore struct {
	seed    [SeedSize]byte
	dbKey   [32]byte
	created time.Time
}

type keystoreJSON struct {
	Format       string    `json:"format"`
	Version      int       `json:"version"`
	IdentitySeed []byte    `json:"identity_seed"`
	DatabaseKey  []byte    `json:"database_key"`
	Created      time.Time `json:"created"`
}

func (k *keystore) wipe() {
	clear(k.seed[:])
	clear(k.dbKey[:])
}

// marshal encodes the keystore plaintext. The caller should zero the result.
func (k *keystore) marshal() []byte {
	j := keystoreJSON{
		Format:       keystoreFormat,
		Version:      keystoreVersion,
		IdentitySeed: k.seed[:],
		DatabaseKey:  k.dbKey[:],
		Created:      k.created.UTC().Truncate(time.Second),
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		panic(err) // cannot fail for this type
	}
	return append(b, '\n')
}

// parseKeystore decodes a keystore plaintext. Errors name no secret.
func parseKeystore(b []byte) (*keystore, error) {
	if len(b) > maxKeystoreSize {
		return nil, ErrCorruptKeystore
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j keystoreJSON
	defer func() {
		clear(j.IdentitySeed)
		clear(j.DatabaseKey)
	}()
	if err := dec.Decode(&j); err != nil {
		return nil, ErrCorruptKeystore
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrCorruptKeystore // trailing data
	}
	if j.Format != keystoreFormat {
		return nil, ErrCorruptKeystore
	}
	if j.Version != keystoreVersion {
		return nil, fmt.Errorf("identity: keystore version %d is not supported by this tchat (it reads version %d)", j.Version, keystoreVersion)
	}
	if len(j.IdentitySeed) != SeedSize || len(j.DatabaseKey) != 32 {
		return nil, ErrCorruptKeystore
	}
	k := &keystore{created: j.Created}
	copy(k.seed[:], j.IdentitySeed)
	copy(k.dbKey[:], j.DatabaseKey)
	return k, nil
}

// sealKeystore encrypts the keystore to an age scrypt recipient.
func sealKeystore(k *keystore, passphrase string, workFactor int) ([]byte, error) {
	pt := k.marshal()
	defer clear(pt)
	var out bytes.Buffer
	if err := ageEncrypt(&out, passphrase, workFactor, func(w io.Writer) error {
		_, err := w.Write(pt)
		return err
	}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// openKeystore decrypts an age-encrypted keystore.
func openKeystore(data []byte, passphrase string) (*keystore, error) {
	if len(data) > maxKeystoreSize {
		return nil, ErrCorruptKeystore
	}
	r, err := ageDecrypt(bytes.NewReader(data), passphrase)
	if err != nil {
		return nil, err
	}
	pt, err := io.ReadAll(io.LimitReader(r, maxKeystoreSize+1))
	defer clear(pt)
	if err != nil {
		return nil, ErrCorruptKeystore
	}
	return parseKeystore(pt)
}

// ageEncrypt writes an age file to dst, encrypted to an scrypt recipient, with the
// plaintext produced by write.
func ageEncrypt(dst io.Writer, passphrase string, workFactor int, write func(io.Writer) error) error {
	if passphrase == "" {
		return errors.New("identity: empty passphrase")
	}
	if workFactor == 0 {
		workFactor = DefaultScryptWorkFactor
	}
	if workFactor < 1 || workFactor > maxScryptWorkFactor {
		return fmt.Errorf("identity: scrypt work factor %d out of range 1..%d", workFactor, maxScryptWorkFactor)
	}
	rcp, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return fmt.Errorf("identity: age: %w", err)
	}
	rcp.SetWorkFactor(workFactor)
	w, err := age.Encrypt(dst, rcp)
	if err != nil {
		return fmt.Errorf("identity: age: %w", err)
	}
	if err := write(w); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("identity: age: %w", err)
	}
	return nil
}

// ageDecrypt opens an age file that must be encrypted to exactly one scrypt
// recipient, telling a wrong passphrase from a file that is not ours.
func ageDecrypt(src io.Reader, passphrase string) (io.Reader, error) {
	if passphrase == "" {
		return nil, errors.New("identity: a passphrase is needed to open this file")
	}
	br := bufio.NewReader(src)
	if err := checkScryptHeader(br); err != nil {
		return nil, err
	}
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, fmt.Errorf("identity: age: %w", err)
	}
	id.SetMaxWorkFactor(maxScryptWorkFactor)
	r, err := age.Decrypt(br, id)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, ErrWrongPassphrase
		}
		// age's errors describe the file's structure, never the passphrase.
		return nil, fmt.Errorf("identity: cannot decrypt: %v", err)
	}
	return r, nil
}

// checkScryptHeader peeks at the age header and refuses files that are not age
// files or not encrypted to a single passphrase, so those are not reported as a
// wrong passphrase.
func checkScryptHeader(br *bufio.Reader) error {
	const magic = "age-encryption.org/v1\n"
	head, _ := br.Peek(4096)
	if !bytes.HasPrefix(head, []byte(magic)) {
		if bytes.HasPrefix(head, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) {
			return errors.New("identity: armored age files are not supported; remove the armor with `age -d` and re-encrypt, or use the binary file")
		}
		return errors.New("identity: not an age-encrypted file")
	}
	stanzas, scrypt := 0, 0
	for _, line := range strings.Split(string(head[len(magic):]), "\n") {
		if strings.HasPrefix(line, "---") {
			break
		}
		if strings.HasPrefix(line, "-> ") {
			stanzas++
			if strings.HasPrefix(line, "-> scrypt ") {
				scrypt++
			}
		}
	}
	if stanzas != 1 || scrypt != 1 {
		return errors.New("identity: the file is not encrypted with a passphrase")
	}
	return nil
}
