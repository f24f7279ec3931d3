// The build that crates/ui embeds. Relative asset paths (`base: './'`) let the page work
// under any prefix a reverse proxy adds; every client route is one path segment deep, so
// `./assets/...` always resolves beside index.html.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 1000,
  },
  server: {
    // `npm run dev` against a local kiroku server.
    proxy: {
      '/loki': { target: 'http://127.0.0.1:3100', ws: true },
    },
  },
});
