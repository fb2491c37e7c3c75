package pipelinestop

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Limits of a ClientRequestToken, SageMaker's idempotency token.
const (
	MinTokenLength = 32
	MaxTokenLength = 128
)

// NewToken returns a new random ClientRequestToken: 64 hexadecimal
// characters from crypto/rand. Use it when every call should be a new
// request; use DeriveToken when a retried or repeated call must be the same
// request.
func NewToken() string {
	var b [32]byte
	// crypto/rand.Read never returns an error (it aborts the program
	// instead), as documented since Go 1.24.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DeriveToken returns a ClientRequestToken that depends only on parts: the
// same parts give the same token in every process, so a request retried
// after a crash or sent by a second replica is the same request. Each part
// is length-prefixed before hashing, so ("ab", "c") and ("a", "bc") give
// different tokens. The token is the hex SHA-256 of the encoded parts (64
// characters, within SageMaker's 32 to 128).
//
// The Stopper's default stop token is DeriveToken("StopPipelineExecution",
// executionARN): one execution is stopped once, whoever asks.
func DeriveToken(parts ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte("pipelinestop/v1"))
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ValidateToken reports whether s can be sent as a ClientRequestToken:
// 32 to 128 characters, each printable ASCII other than space. SageMaker
// documents only the length; the character rule rejects tokens that could
// not have been meant (whitespace, control or non-ASCII characters). The
// error matches ErrInvalidToken.
func ValidateToken(s string) error {
	if n := len(s); n < MinTokenLength || n > MaxTokenLength {
		return fmt.Errorf("%w: it is %d characters long; it must be %d to %d",
			ErrInvalidToken, n, MinTokenLength, MaxTokenLength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: character %d (byte 0x%02x) is not printable ASCII", ErrInvalidToken, i, c)
		}
	}
	return nil
}
