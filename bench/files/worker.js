// The floor of the files benchmark: a bare Worker that streams a PUT body
// into R2 and a GET from it, with no rules, no metadata document and no
// checks, so Blaze's upload and download are measured against what the
// runtime's R2 binding costs by itself on the same machine.
export default {
  async fetch(request, env) {
    const key = new URL(request.url).pathname.slice(1);
    if (key === "v1/health") return new Response("ok"); // the harness's readiness probe
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
