import { defineConfig } from "vite";

// The Tauri shell embeds dist/ at compile time (courier-app/tauri.conf.json `frontendDist`),
// so this build must run before `cargo build -p courier-app`.
export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
});
