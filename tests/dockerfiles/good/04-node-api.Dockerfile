FROM node:20-alpine
LABEL "com.example.team"="payments" \
      'com.example.on-call'="pager@example.com" \
      version="2.4.1"
ENV NODE_ENV=production PATH="/home/node/app/node_modules/.bin:$PATH"
# The old one-pair form: the value is the rest of the line.
ENV NPM_CONFIG_LOGLEVEL warn
WORKDIR /home/node/app
COPY --chown=node:node package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --chown=node:node . .
USER node
EXPOSE 3000
CMD ["node", "server.js"]
