// Harbor, the registry Welkin runs, keeps every repository inside a project:
// `REGISTRY/pause` cannot exist there, and a push into a project that does
// not exist fails half-way. Detected by its API (`/api/v2.0/ping` answers
// "Pong"), checked before anything is pushed; projects are created only when
// asked (--create-projects), through the same API with the same credentials.
import type { Http, HttpResponse } from '../http/client.js';
import { describeNetworkError } from '../http/errors.js';
import { RegistryError } from './client.js';

export class HarborApi {
  private constructor(
    private readonly http: Http,
    private readonly base: string,
  ) {}

  /** A client for `host`'s Harbor API, or undefined when `host` is not Harbor. */
  static async detect(http: Http, host: string): Promise<HarborApi | undefined> {
    const base = `${http.baseUrl(host)}/api/v2.0`;
    const api = new HarborApi(http, base);
    try {
      const res = await api.send('/ping', { maxBody: 1024 });
      const text = await res.body.text();
      return res.status === 200 && text.trim().replace(/^"|"$/g, '').toLowerCase() === 'pong' ? api : undefined;
    } catch (err) {
      // A registry that is not Harbor may close or refuse /api: that only means "not Harbor";
      // a registry that is down is reported by the first registry request.
      void err;
      return undefined;
    }
  }

  /** True when the project exists (HEAD /projects?project_name=). */
  async projectExists(name: string): Promise<boolean> {
    const res = await this.send(`/projects?project_name=${encodeURIComponent(name)}`, { method: 'HEAD' });
    await res.body.dump();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw this.error(res, `check Harbor project ${name}`);
  }

  /** Creates a private project; one that appeared meanwhile (409) is fine. */
  async createProject(name: string): Promise<void> {
    const body = Buffer.from(JSON.stringify({ project_name: name, metadata: { public: 'false' } }));
    const res = await this.send('/projects', { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, body, maxBody: 64 * 1024 });
    await res.body.dump();
    if (res.status === 201 || res.status === 409) return;
    throw this.error(res, `create Harbor project ${name}`, res.status === 401 || res.status === 403 ? '; give credentials of a user who may create projects (--username with --password-stdin)' : '');
  }

  private async send(path: string, req: Parameters<Http['request']>[1]): Promise<HttpResponse> {
    try {
      return await this.http.request(`${this.base}${path}`, { item: `Harbor API ${path}`, basic: true, ...req });
    } catch (err) {
      throw new RegistryError(`Harbor API ${this.base}${path}: ${describeNetworkError(err)}`, undefined, undefined, { cause: err });
    }
  }

  private error(res: HttpResponse, what: string, hint = ''): RegistryError {
    return new RegistryError(`${what}: ${res.url.origin} answered HTTP ${res.status}${hint}`, res.status);
  }
}

/** The Harbor project of a repository path, or undefined when it has none (a single component). */
export function harborProject(repository: string): string | undefined {
  const slash = repository.indexOf('/');
  return slash > 0 ? repository.slice(0, slash) : undefined;
}
