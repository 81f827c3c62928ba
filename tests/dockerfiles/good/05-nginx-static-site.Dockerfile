FROM node:20-alpine
WORKDIR /site
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

FROM nginx:1.27-alpine
# Stage 0 is the unnamed build stage above.
COPY --from=0 /site/dist /usr/share/nginx/html
COPY nginx/default.conf /etc/nginx/conf.d/default.conf
STOPSIGNAL SIGQUIT
EXPOSE 80 443
HEALTHCHECK --interval=15s CMD wget -q --spider http://127.0.0.1/ || exit 1
CMD ["nginx", "-g", "daemon off;"]
