package ikecrypto

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ReadSecretFile reads a private key or pre-shared key file, refusing one
// that is not a regular file or that its group or others may read or write
// (mode & 0o077 != 0), as OpenSSH does for private keys: a secret readable
// by others is no longer secret, and the error says how to fix it. The
// mode is checked on the opened file, so a rename between check and read
// cannot swap the file. The content is returned as is (a PSK file's
// trailing newline included); files over 1 MiB are refused.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ikecrypto: secret file %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("ikecrypto: secret file %s: mode %04o lets group or others access it; run: chmod 600 %s", path, perm, path)
	}
	if fi.Size() > maxSecretFile {
		return nil, fmt.Errorf("ikecrypto: secret file %s: %d octets, more than any key (limit %d): wrong file?", path, fi.Size(), maxSecretFile)
	}
	// One buffer, sized from Stat with room to spare, so that no partial
	// copy of the secret is left behind by a growing slice. A file that
	// fills it grew while being read.
	buf := make([]byte, fi.Size()+512)
	n, err := io.ReadFull(f, buf)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return buf[:n:n], nil
	case err == nil:
		clear(buf)
		return nil, fmt.Errorf("ikecrypto: secret file %s: changed while being read", path)
	default:
		clear(buf)
		return nil, fmt.Errorf("ikecrypto: secret file %s: %w", path, err)
	}
}
