/**
 * Cosign-compatible key signatures: key files (cosign's encrypted PEM and PKIX public keys), the
 * simple-signing payload, signing into the `sha256-<hex>.sig` tag (and optionally as an OCI 1.1
 * referrer), and verification with containers/image's `sigstoreSigned` rules. Keyless (Fulcio/Rekor)
 * signatures and the v3 bundle format are out of scope: a disconnected site has neither service.
 */
export {
  COSIGN_PRIVATE_KEY_PEM,
  COSIGN_SCRYPT,
  generateCosignKeyPair,
  loadCosignPrivateKey,
  loadCosignPublicKey,
  PUBLIC_KEY_PEM,
  SIGSTORE_PRIVATE_KEY_PEM,
} from './key-file.js';
export { COSIGN_SIGNATURE_TYPE, type CosignPayloadClaims, cosignPayload, parseCosignPayload } from './payload.js';
export { type CosignSignOptions, type CosignSignResult, cosignSign } from './sign.js';
export { COSIGN_SIG_ARTIFACT_TYPE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, signatureTag } from './signature-manifest.js';
export { type CosignVerifyOptions, cosignVerify, type VerifiedCosignSignature, verifyPayloadSignature } from './verify.js';
