import { defineConfig } from "vite";

// Built files go to dist/, which doorstep-server serves at `/` (--ui-dir, default
// ui/dashboard/dist). `npm run dev` proxies the API to a server on :8080.
export default defineConfig({
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
  server: { proxy: { "/v1": "http://127.0.0.1:8080" } },
});
