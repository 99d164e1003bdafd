package cli

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
	"github.com/uvmbuild/uvmbuild/builder/attest"
)

func newEndorseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "endorse",
		Short: "Sign and verify measurement endorsements; write Trustee reference values",
		Long: `A measurement file (igvmgen's JSON, node-builder's igvm-measurement.cose) is
signed into a COSE_Sign1 endorsement with an ECDSA key: P-384 (ES384, the
curve SEV-SNP uses) or P-256 (ES256). The protected header carries the
algorithm, the content type application/json and the key ID (SHA-256 of the
public key), so verifying with the wrong key says so.

Make a key:   openssl ecparam -name secp384r1 -genkey -noout -out key.pem
              openssl ec -in key.pem -pubout -out pub.pem`,
		Args: func(cmd *cobra.Command, args []string) error {
			return usageError(fmt.Errorf("endorse needs a subcommand: sign, verify or rvps"))
		},
	}
	cmd.AddCommand(newEndorseSignCmd(), newEndorseVerifyCmd(), newEndorseRVPSCmd())
	return cmd
}

func newEndorseSignCmd() *cobra.Command {
	var key, out string
	cmd := &cobra.Command{
		Use:   "sign --key KEY.pem MEASUREMENT -o ENDORSEMENT",
		Short: "Sign a measurement file into a COSE_Sign1 endorsement",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" || out == "" {
				return usageError(fmt.Errorf("--key and -o are required"))
			}
			return badInput(runEndorseSign(cmd.OutOrStdout(), key, args[0], out))
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "PEM ECDSA private key (P-384 or P-256)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "endorsement file to write")
	return cmd
}

func runEndorseSign(w io.Writer, keyFile, in, out string) error {
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("%w: %w", attest.ErrBadInput, err)
	}
	key, err := attest.ParsePrivateKey(kb)
	if err != nil {
		return fmt.Errorf("key %s: %w", keyFile, err)
	}
	payload, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("%w: %w", attest.ErrBadInput, err)
	}
	// Only a valid measurement file is endorsed, byte for byte as given.
	m, err := attest.ParseMeasurement(payload, in)
	if err != nil {
		return err
	}
	end, err := attest.Endorse(rand.Reader, payload, key)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(out, end, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "endorsed launch digest %s (guest SVN %q) into %s\n", m.LaunchDigest, m.GuestSVN, out)
	return nil
}

func newEndorseVerifyCmd() *cobra.Command {
	var pub, expect string
	cmd := &cobra.Command{
		Use:   "verify --pub PUB.pem ENDORSEMENT",
		Short: "Verify an endorsement and print the measurement it endorses",
		Long: `Verifies the endorsement's signature with the public key and prints the endorsed
measurement file on stdout. With --expect MEASUREMENT the endorsed measurement
must also equal that file's.

Exit status: 0 valid (and equal), 3 valid but different from --expect, 1 bad
signature, wrong key or malformed input.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pub == "" {
				return usageError(fmt.Errorf("--pub is required"))
			}
			return badInput(runEndorseVerify(cmd.OutOrStdout(), pub, args[0], expect))
		},
	}
	cmd.Flags().StringVar(&pub, "pub", "", "PEM public key (or certificate)")
	cmd.Flags().StringVar(&expect, "expect", "", "measurement file the endorsement must match")
	return cmd
}

func runEndorseVerify(w io.Writer, pubFile, in, expect string) error {
	pub, err := loadPub(pubFile)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("%w: %w", attest.ErrBadInput, err)
	}
	payload, err := attest.VerifyEndorsement(data, pub)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	m, err := attest.ParseMeasurement(payload, in+" (payload)")
	if err != nil {
		return err
	}
	if expect != "" {
		want, _, err := attest.ReadMeasurement(expect, nil)
		if err != nil {
			return err
		}
		return reportMeasurements(w, expect, in, want, m)
	}
	_, err = w.Write(append(payload, '\n'))
	return err
}

func newEndorseRVPSCmd() *cobra.Command {
	var out, build string
	var policies []string
	cmd := &cobra.Command{
		Use:   "rvps MEASUREMENT... [--policy-digest sha256:HEX | --record out/build.json] [-o FILE]",
		Short: "Write Trustee RVPS reference values for measurements and the policy digest",
		Long: `Writes an RVPS registration message (version 0.1.0, type "sample") whose payload
names the accepted launch digests under "snp_launch_measurement" and the agent
policy digest (the SNP HOST_DATA the Kata shim sets) under "snp_host_data", the
names Trustee's attestation policies query. The policy digest comes from
--policy-digest or from the build record's "policy.digest". Register it with
"rvps-tool register --path FILE".`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError(fmt.Errorf("at least one measurement file is required"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return badInput(runEndorseRVPS(cmd.OutOrStdout(), args, policies, build, out))
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default stdout)")
	cmd.Flags().StringArrayVar(&policies, "policy-digest", nil, "accepted agent policy digest (repeatable)")
	cmd.Flags().StringVar(&build, "record", "", "build record (build.json or out/ dir) to take policy.digest from")
	return cmd
}

func runEndorseRVPS(w io.Writer, files, policies []string, build, out string) error {
	rv := attest.ReferenceValues{PolicyDigests: policies}
	for _, f := range files {
		m, _, err := attest.ReadMeasurement(f, nil)
		if err != nil {
			return err
		}
		rv.LaunchMeasurements = append(rv.LaunchMeasurements, m.LaunchDigest)
	}
	if build != "" {
		rec, _, ok := loadRecord(build)
		if !ok {
			return fmt.Errorf("%w: no readable build record at %s", attest.ErrBadInput, build)
		}
		if d := rec.Record["policy.digest"]; d != "" {
			rv.PolicyDigests = append(rv.PolicyDigests, d)
		}
	}
	msg, err := attest.RVPSMessage(rv)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = w.Write(msg)
		return err
	}
	return atomicfile.WriteFile(out, msg, 0o644)
}
