// Platforms as written in manifests and on the command line: os/arch[/variant].

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

const PLATFORM_RE = /^([a-z0-9]+)\/([a-z0-9_]+)(?:\/([a-z0-9]+))?$/;

export function parsePlatform(text: string): Platform {
  const m = PLATFORM_RE.exec(text);
  if (!m) throw new Error(`invalid platform "${text}": write os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm64/v8`);
  const [, os = '', architecture = '', variant] = m;
  return { os, architecture, ...(variant !== undefined && { variant }) };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
