# ARG is the only instruction that may come before FROM.
ARG NODE_VERSION=20
ENV NODE_ENV=production
FROM node:${NODE_VERSION}-alpine
CMD ["node", "server.js"]
