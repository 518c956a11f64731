<#
.SYNOPSIS
Installs, upgrades or removes egs-tool, the eryph guest services host tool, on a Windows
Hyper-V host.

.DESCRIPTION
install (the default) copies egs-tool.exe from beside this script to
%ProgramFiles%\eryph\egs-tool, adds that folder to the machine's PATH (once) and runs
`egs-tool.exe initialize`: the guest service is registered with Hyper-V and the machine
key is created in %ProgramData%\eryph\guest-services\private. Running it again upgrades the
program and keeps the key.
uninstall runs `egs-tool.exe unregister`, removes the folder and its PATH entry; the machine
key stays unless -Purge.

.EXAMPLE
.\install.ps1
.\install.ps1 uninstall -Purge
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('install', 'uninstall')]
    [string]$Action = 'install',
    [switch]$Purge
)
$ErrorActionPreference = 'Stop'

$identity = [Security.Principal.WindowsIdentity]::GetCurrent()
$principal = New-Object Security.Principal.WindowsPrincipal($identity)
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Error 'install.ps1: run it from an elevated PowerShell (Administrator)'
    exit 1
}

$programDir = Join-Path $env:ProgramFiles 'eryph\egs-tool'
$exe = Join-Path $programDir 'egs-tool.exe'
$keyDir = Join-Path $env:ProgramData 'eryph\guest-services\private'

# The machine PATH without our folder (compared case-insensitively, trailing '\' ignored).
function Get-PathWithout([string]$folder) {
    $path = [Environment]::GetEnvironmentVariable('Path', 'Machine')
    $entries = @($path -split ';' | Where-Object {
        $_ -and ($_.TrimEnd('\') -ne $folder.TrimEnd('\'))
    })
    return $entries
}

if ($Action -eq 'uninstall') {
    if (Test-Path -LiteralPath $exe) {
        & $exe unregister | Out-Null
    }
    [Environment]::SetEnvironmentVariable('Path', ((Get-PathWithout $programDir) -join ';'), 'Machine')
    Remove-Item -LiteralPath $programDir -Recurse -Force -ErrorAction SilentlyContinue
    if ($Purge) {
        Remove-Item -LiteralPath $keyDir -Recurse -Force -ErrorAction SilentlyContinue
    }
    Write-Output 'egs-tool removed'
    exit 0
}

$source = Join-Path $PSScriptRoot 'egs-tool.exe'
if (-not (Test-Path -LiteralPath $source)) {
    Write-Error "install.ps1: $source is missing"
    exit 1
}
New-Item -ItemType Directory -Force -Path $programDir | Out-Null
Copy-Item -LiteralPath $source -Destination $exe -Force

$entries = Get-PathWithout $programDir
[Environment]::SetEnvironmentVariable('Path', (($entries + $programDir) -join ';'), 'Machine')
if (-not (($env:Path -split ';') -contains $programDir)) {
    $env:Path = "$env:Path;$programDir"
}

& $exe initialize
if ($LASTEXITCODE -ne 0) {
    Write-Error "install.ps1: egs-tool.exe initialize failed (exit $LASTEXITCODE)"
    exit 1
}
Write-Output "egs-tool installed in $programDir (on PATH for new shells)"
