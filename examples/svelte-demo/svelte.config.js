// Svelte 5 in runes mode everywhere (read by @sveltejs/vite-plugin-svelte).
export default {
  compilerOptions: { runes: true },
};
