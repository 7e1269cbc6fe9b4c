// The floor of the files benchmark: a bare Worker that streams a PUT body
// into R2 and a GET from it, with no rules, no metadata document and no
// checks, so Blaze's upload and download are measured against what the
// runtime's R2 binding costs by itself on the same machine. A GET of
// `/consulted/<key>` first asks a Durable Object (`Catalog`, one round trip
// that answers the key) and then reads R2: the least any design pays that
// keeps a file's metadata in a Durable Object, as Blaze's folder objects do.
export class Catalog {
  constructor(ctx) {
    this.ctx = ctx;
  }

  /** Answers the key the path names (here: the path itself). */
  async fetch(request) {
    return new Response(new URL(request.url).pathname.slice(1));
  }
}

const CONSULTED = "consulted/";

export default {
  async fetch(request, env) {
    let key = new URL(request.url).pathname.slice(1);
    if (key === "v1/health") return new Response("ok"); // the harness's readiness probe
    if (request.method === "GET" && key.startsWith(CONSULTED)) {
      const catalog = env.CATALOG.get(env.CATALOG.idFromName("files"));
      key = await (await catalog.fetch(`http://catalog/${key.slice(CONSULTED.length)}`)).text();
    }
    if (request.method === "PUT") {
      const object = await env.FILES.put(key, request.body, {
        httpMetadata: { contentType: request.headers.get("Content-Type") ?? "application/octet-stream" },
      });
      return Response.json({ size: object.size, md5: object.etag });
    }
    if (request.method === "GET") {
      const object = await env.FILES.get(key);
      if (object === null) return new Response("no such file", { status: 404 });
      return new Response(object.body, {
        headers: {
          "Content-Type": object.httpMetadata?.contentType ?? "application/octet-stream",
          "Content-Length": String(object.size),
          ETag: object.httpEtag,
        },
      });
    }
    return new Response("PUT or GET", { status: 405, headers: { Allow: "GET, PUT" } });
  },
};
