FROM eclipse-temurin:21-jre
ENV APP_NAME=inventory APP_TITLE="Inventory Service" APP_TAGLINE='stock, in $real time'
# The legacy form: one key, the value is everything after the first space.
ENV JAVA_OPTS -Xms256m -Xmx512m -XX:+UseG1GC
ENV GREETING=hello\ world \
    EMPTY= \
    QUOTED_EQ="a=b=c"
ENV APP_HOME=/opt/$APP_NAME LOG_FILE=${APP_HOME}/log.txt
WORKDIR $APP_HOME
COPY target/inventory.jar app.jar
EXPOSE 8080
ENTRYPOINT ["sh", "-c", "exec java $JAVA_OPTS -jar app.jar"]
