package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"github.com/veraison/go-cose"

	"github.com/uvmbuild/uvmbuild/builder/snp"
)

// ContentType is the COSE content type of an endorsed measurement file.
const ContentType = "application/json"

// ErrSignature marks an endorsement whose signature does not verify with
// the key given: the wrong key, or a modified endorsement.
var ErrSignature = errors.New("endorsement signature does not verify")

// algFor picks the COSE algorithm for an ECDSA key: ES384 for P-384 (the
// curve SEV-SNP uses for its own signatures), ES256 for P-256.
func algFor(pub crypto.PublicKey) (cose.Algorithm, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return 0, fmt.Errorf("%w: key is %T, want an ECDSA P-384 or P-256 key", ErrBadInput, pub)
	}
	switch k.Curve {
	case elliptic.P384():
		return cose.AlgorithmES384, nil
	case elliptic.P256():
		return cose.AlgorithmES256, nil
	}
	return 0, fmt.Errorf("%w: ECDSA curve %s, want P-384 or P-256", ErrBadInput, k.Curve.Params().Name)
}

// KeyID identifies a public key: the SHA-256 of its PKIX encoding. It goes
// into the endorsement's kid header so a verifier given the wrong key can
// say so.
func KeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding public key: %w", ErrBadInput, err)
	}
	s := sha256.Sum256(der)
	return s[:], nil
}

// Endorse signs payload (a measurement file) into a tagged COSE_Sign1
// message with key, an ECDSA P-384 (ES384) or P-256 (ES256) key. ECDSA
// signatures take randomness from rand (crypto/rand.Reader in production).
func Endorse(rand io.Reader, payload []byte, key crypto.Signer) ([]byte, error) {
	alg, err := algFor(key.Public())
	if err != nil {
		return nil, err
	}
	kid, err := KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	signer, err := cose.NewSigner(alg, key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	headers := cose.Headers{
		Protected: cose.ProtectedHeader{
			cose.HeaderLabelAlgorithm:   alg,
			cose.HeaderLabelContentType: ContentType,
			cose.HeaderLabelKeyID:       kid,
		},
	}
	out, err := cose.Sign1(rand, signer, headers, payload, nil)
	if err != nil {
		return nil, fmt.Errorf("signing endorsement: %w", err)
	}
	return out, nil
}

func decodeSign1(data []byte) (*cose.Sign1Message, error) {
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(data); err != nil {
		return nil, fmt.Errorf("%w: not a COSE_Sign1 endorsement: %w", ErrBadInput, err)
	}
	if msg.Payload == nil {
		return nil, fmt.Errorf("%w: COSE_Sign1 endorsement has a detached payload", ErrBadInput)
	}
	return &msg, nil
}

// EndorsementPayload returns an endorsement's payload without verifying
// its signature (to compare two endorsements by content).
func EndorsementPayload(data []byte) ([]byte, error) {
	msg, err := decodeSign1(data)
	if err != nil {
		return nil, err
	}
	return msg.Payload, nil
}

// VerifyEndorsement checks an endorsement's signature with pub and
// returns its payload. A wrong key or a modified message gives an error
// matching ErrSignature; a malformed message one matching ErrBadInput.
func VerifyEndorsement(data []byte, pub crypto.PublicKey) ([]byte, error) {
	msg, err := decodeSign1(data)
	if err != nil {
		return nil, err
	}
	alg, err := algFor(pub)
	if err != nil {
		return nil, err
	}
	got, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		return nil, fmt.Errorf("%w: endorsement algorithm header: %w", ErrBadInput, err)
	}
	if got != alg {
		return nil, fmt.Errorf("%w: endorsement is signed with %s, the key given is for %s", ErrSignature, got, alg)
	}
	if kid, ok := msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte); ok {
		want, err := KeyID(pub)
		if err != nil {
			return nil, err
		}
		if hex.EncodeToString(kid) != hex.EncodeToString(want) {
			return nil, fmt.Errorf("%w: endorsement was signed by key %x, the key given is %x", ErrSignature, kid, want)
		}
	}
	v, err := cose.NewVerifier(alg, pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	if err := msg.Verify(nil, v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return msg.Payload, nil
}

// ParsePrivateKey reads a PEM ECDSA private key ("EC PRIVATE KEY" SEC1 or
// "PRIVATE KEY" PKCS#8, after any "EC PARAMETERS" block) of a curve COSE
// can sign with.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	k, err := snp.ParseECKey("private key", data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	if _, err := algFor(k.Public()); err != nil {
		return nil, err
	}
	return k, nil
}

// ParsePublicKey reads a PEM ECDSA public key ("PUBLIC KEY"), the key of
// a "CERTIFICATE", or the public half of a private key PEM.
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block in public key", ErrBadInput)
	}
	var pub any
	switch blk.Type {
	case "PUBLIC KEY":
		p, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: public key: %w", ErrBadInput, err)
		}
		pub = p
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %w", ErrBadInput, err)
		}
		pub = c.PublicKey
	default:
		k, err := ParsePrivateKey(data)
		if err != nil {
			return nil, err
		}
		pub = k.Public()
	}
	if _, err := algFor(pub); err != nil {
		return nil, err
	}
	return pub, nil
}
