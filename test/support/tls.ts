/**
 * A throwaway CA and server certificate made with the openssl CLI (EC P-256),
 * for TLS registries in the tests.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { requireBinary, runOk } from './tools.js';

export interface CA {
  dir: string;
  /** PEM certificate of the CA: trust this. */
  caCert: string;
  /** PEM private key of the CA. */
  caKey: string;
}

export interface ServerCert {
  caCert: string;
  /** PEM leaf certificate. */
  cert: string;
  /** PEM private key (PKCS#8) of the leaf. */
  key: string;
}

export interface CertNames {
  ip?: string | string[];
  dns?: string[];
  /** Subject CN; default the first DNS name or IP. */
  cn?: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Writes ca.crt / ca.key into dir. */
export async function makeCA(dir: string, cn = 'airlock test CA'): Promise<CA> {
  const openssl = requireBinary('openssl');
  const caCert = path.join(dir, 'ca.crt');
  const caKey = path.join(dir, 'ca.key');
  await runOk(openssl, [
    'req', '-x509', ...EC,
    '-keyout', caKey, '-out', caCert,
    '-days', '7', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash',
  ]);
  return { dir, caCert, caKey };
}

/**
 * Writes NAME.crt / NAME.key (default NAME "server") into dir, signed by ca,
 * with subjectAltName IP:127.0.0.1 and DNS:localhost unless told otherwise.
 */
export async function makeServerCert(
  dir: string,
  ca: CA,
  names: CertNames = { ip: '127.0.0.1', dns: ['localhost'] },
  name = 'server',
): Promise<ServerCert> {
  const openssl = requireBinary('openssl');
  const ips = names.ip === undefined ? [] : Array.isArray(names.ip) ? names.ip : [names.ip];
  const dns = names.dns ?? [];
  const sans = [...ips.map((i) => `IP:${i}`), ...dns.map((d) => `DNS:${d}`)];
  if (sans.length === 0) throw new Error('makeServerCert needs at least one IP or DNS name');
  const cn = names.cn ?? dns[0] ?? ips[0] ?? 'server';
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.crt`);
  const ext = path.join(dir, `${name}.ext`);
  await writeFile(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${sans.join(',')}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'),
  );
  await runOk(openssl, ['req', '-new', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  await runOk(openssl, [
    'x509', '-req', '-in', csr,
    '-CA', ca.caCert, '-CAkey', ca.caKey, '-CAcreateserial',
    '-out', cert, '-days', '7', '-extfile', ext,
  ]);
  return { caCert: ca.caCert, cert, key };
}
