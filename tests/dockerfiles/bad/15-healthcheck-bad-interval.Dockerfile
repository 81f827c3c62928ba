FROM nginx:1.27-alpine
COPY site/ /usr/share/nginx/html/
HEALTHCHECK --interval=soon CMD wget -q --spider http://127.0.0.1/
EXPOSE 80
CMD ["nginx", "-g", "daemon off;"]
