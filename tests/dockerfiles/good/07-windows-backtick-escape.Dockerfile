# escape=`
# A Windows image: backslashes are path separators, the backtick continues lines.
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-NoLogo", "-Command", "$ErrorActionPreference = 'Stop';"]
ENV APP_HOME=C:\inetpub\reports `
    LOG_DIR="C:\ProgramData\Reports\Logs"
WORKDIR C:\inetpub\reports
COPY publish\ C:\inetpub\reports\
RUN New-Item -ItemType Directory -Force -Path $env:LOG_DIR | Out-Null; `
    # give the app pool identity access to its log folder
    icacls $env:LOG_DIR /grant 'IIS_IUSRS:(OI)(CI)M'
VOLUME C:\ProgramData\Reports\Logs
EXPOSE 80
ENTRYPOINT ["C:\\inetpub\\reports\\Reports.exe", "--urls", "http://+:80"]
