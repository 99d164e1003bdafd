// Package attest hands a build's launch measurement out in the forms its
// consumers take, and describes how it was made:
//
//   - the measurement file in igvmgen's exact JSON form (what
//     node-builder names igvm-measurement.cose), read, written and compared
//     ([Measurement]);
//   - a COSE_Sign1 endorsement of that file signed with a user key
//     (ES384 with P-384, ES256 with P-256), and its verification
//     ([Endorse], [VerifyEndorsement]);
//   - reference values for Confidential Containers' Trustee (its RVPS
//     "sample" message naming snp_launch_measurement and snp_host_data,
//     the policy digest) ([RVPSMessage]);
//   - an in-toto v1 statement with a SLSA v1 provenance predicate built
//     from a build record, with the artifacts and launch digests as
//     subjects and every recorded input as resolved dependencies
//     ([Provenance], [WriteProvenance]).
//
// Nothing here reads the clock: the provenance of two equal builds is
// byte-identical.
package attest
