# One image for every SwiftCart process: the five subgraphs, the gateway and the storefront.
# docker-compose.yml picks the process with `command:`; the default runs the product service.
#
#   docker build -t swiftcart:local .
#   docker run --rm swiftcart:local node subgraphs/order/src/main.ts
#
# Node 24 runs the TypeScript sources directly (type stripping); the one build step is the
# storefront's Vite bundle, made in a stage of its own so Vite stays out of the runtime image.

# --- sources without anything machine-local (works without a .dockerignore too) ---
FROM node:24-slim AS source
WORKDIR /src
COPY . .
RUN rm -rf .git .data .ci clients/storefront/dist gateway/explorer/dist \
 && find . -name node_modules -type d -prune -exec rm -rf {} + \
 && node -e " \
      const fs = require('node:fs'), path = require('node:path'); \
      const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')); \
      const dirs = (pkg.workspaces || []).flatMap((w) => w.endsWith('/*') \
        ? fs.readdirSync(w.slice(0, -2), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => w.slice(0, -1) + d.name) \
        : [w]); \
      for (const file of ['package.json', 'package-lock.json', '.npmrc', ...dirs.map((d) => d + '/package.json')]) { \
        if (!fs.existsSync(file)) continue; \
        fs.mkdirSync(path.dirname('/manifests/' + file), { recursive: true }); \
        fs.copyFileSync(file, '/manifests/' + file); \
      }"

# --- the storefront's bundle, built with Vite (a development dependency the runtime image leaves out) ---
FROM node:24-slim AS storefront
WORKDIR /build
COPY --from=source /manifests/ ./
RUN npm ci --no-audit --no-fund
COPY --from=source /src/ ./
RUN node --input-type=module -e "await (await import('./clients/storefront/server.ts')).buildStorefront()"

# --- the runtime image ---
FROM node:24-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
# Manifests first, so dependencies are reinstalled only when a package.json or the lockfile changes.
COPY --from=source /manifests/ ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=source /src/ ./
# In production the storefront serves this build and never builds (clients/storefront/server.ts).
COPY --from=storefront /build/clients/storefront/dist/ ./clients/storefront/dist/
USER node
EXPOSE 4000 4001 4002 4003 4004 4005 5173
CMD ["node", "subgraphs/product/src/main.ts"]
