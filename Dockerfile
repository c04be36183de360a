# Two stages: the first installs every dependency, compiles TypeScript and then
# drops the development dependencies; the second runs the compiled JavaScript
# with what is left, and never compiles anything itself.
FROM node:22-slim AS build
# better-sqlite3 downloads a prebuilt binary from GitHub and compiles itself when
# it cannot (a network that reaches the npm registry only): the tools for that
# stay in this stage. The image's own headers spare node-gyp a download.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY config ./config
COPY src ./src
COPY views ./views
COPY scripts/start.mjs scripts/views.mjs ./scripts/
# --omit=optional too: TypeScript is an optional peer of i18next, and would stay (23 MB).
# A module compiled here leaves its object files beside its binary (15 MB for better-sqlite3).
RUN node scripts/start.mjs --build-only \
  && npm prune --omit=dev --omit=optional --no-audit --no-fund \
  && find node_modules -path '*/build/Release/obj*' -prune -exec rm -rf {} + \
  && find node_modules -path '*/build/Release/.deps' -prune -exec rm -rf {} +

FROM node:22-slim
WORKDIR /app
ENV NODE_ENV=production PORT=3000 DATA_DIR=/data
COPY package.json package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY views ./views
COPY locales ./locales
COPY public ./public
RUN mkdir -p /data && chown node:node /data && chmod 700 /data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/src/main.js"]
