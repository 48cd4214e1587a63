/**
 * The signing half of `lading quickstart`: the release the quickstart composed is signed (a simple
 * signature, OpenPGP, by a key made for the demo), carried with its signature to a second layout as a
 * restricted-network site receives it (the image, and the signature as the ConfigMap a cluster reads),
 * and verified there from what arrived: the site's own copy of the image and the ConfigMap file.
 *
 * Lives in cli/ because it strings together copy, sign and store, which only the CLI layer may combine.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { copyImage } from '../copy/copy-image.js';
import { LadingError } from '../errors.js';
import { parseImageReference } from '../oci/reference.js';
import { writeSignatureConfigMap } from '../sign/configmap.js';
import { parseKeyring } from '../sign/keyring.js';
import { createSimpleSignature } from '../sign/openpgp-sign.js';
import { readSignatures, writeSignature } from '../sign/signature-store.js';
import { verifySimpleSignatures } from '../sign/verify-image.js';
import type { QuickstartRelease } from '../release/quickstart-release.js';
import { LayoutStore } from '../store/layout/layout-store.js';

/** The name the demo release is signed for, as a product would publish it. */
const IDENTITY = 'quay.example/lading/release:1.0.0';

export async function signingQuickstart(work: string, release: QuickstartRelease, say: (s: string) => void): Promise<void> {
  // 12. A signing key. A real release key lives offline; the demo makes one.
  const keys = join(work, 'keys');
  await mkdir(keys, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: 'Lading quickstart release key' }],
    format: 'object',
  });
  const keyringFile = join(keys, 'release-key.pub.asc');
  await writeFile(keyringFile, publicKey.armor());
  say(`12. made a demo OpenPGP release key; its public half is ${keyringFile}`);

  // 13. Sign the release digest into an OpenShift signature store (<dir>/sha256=<hex>/signature-N).
  const store = { layout: 'openshift' as const, base: join(work, 'signatures') };
  const signature = await createSimpleSignature({ digest: release.digest, identity: IDENTITY, key: privateKey });
  const written = await writeSignature(store, { digest: release.digest }, signature);
  say(`13. signed ${release.digest} as ${IDENTITY}: ${written.location}`);

  // 14. Carry the release and its signature to the site: the image by the copy engine, the signature
  //     as the ConfigMap file `lading release mirror --release-image-signature-to-dir` writes.
  const siteDir = join(work, 'site-release');
  const src = await LayoutStore.open(release.dir, 'read');
  const dst = await LayoutStore.open(siteDir, 'write');
  try {
    await copyImage(src, release.tag, dst, { tags: [release.tag] });
  } finally {
    await Promise.all([src.close(), dst.close()]);
  }
  const signatures = (await readSignatures(store, { digest: release.digest })).map((s) => s.bytes);
  const configMap = await writeSignatureConfigMap(join(work, 'site-signatures'), release.digest, signatures);
  say(`14. carried the release to oci:${siteDir}:${release.tag} and its signature as ${configMap}`);

  // 15. At the site: the digest of the site's own copy, the signatures from the ConfigMap, the keyring.
  const site = await LayoutStore.open(siteDir, 'read');
  let siteDigest: string;
  try {
    siteDigest = (await site.resolve(release.tag)).digest;
  } finally {
    await site.close();
  }
  const carried = JSON.parse(await readFile(configMap, 'utf8')) as { binaryData: Record<string, string> };
  const result = await verifySimpleSignatures({
    image: `oci:${siteDir}:${release.tag}`,
    digest: siteDigest,
    intended: parseImageReference(IDENTITY),
    identity: { type: 'matchRepository' },
    keyrings: [await parseKeyring(await readFile(keyringFile), 'release-key.pub.asc')],
    signatures: Object.entries(carried.binaryData).map(([name, b64]) => ({ name, bytes: Buffer.from(b64, 'base64') })),
  });
  const signer = result.accepted[0]?.signers[0];
  if (!result.satisfied || signer === undefined)
    throw new LadingError('SIGNATURE', `the carried signature of ${siteDigest} did not verify`);
  say(
    `15. verified at the site: ${siteDigest} signed for ${result.accepted[0]!.payload.identity} by ${signer.userID ?? signer.fingerprint}`,
  );
}
