# escape=^
FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
WORKDIR C:\app
COPY app\ C:\app\
CMD ["C:\\app\\app.exe"]
